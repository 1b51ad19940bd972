output "delivery_stream_name" {
  description = "Firehose delivery stream to send load to."
  value       = module.tideline.delivery_stream_name
}

output "data_lake_bucket" {
  description = "S3 data lake bucket."
  value       = module.tideline.data_lake_bucket
}

output "lake_glue_database" {
  description = "Glue database of the lake tables, for Athena (docs/lake.md)."
  value       = module.tideline.lake_glue_database
}

output "athena_workgroup" {
  description = "Athena workgroup for lake queries."
  value       = module.tideline.athena_workgroup
}

output "queue_url" {
  description = "URL of the FIFO queue."
  value       = module.tideline.queue_url
}

output "table_name" {
  description = "Name of the events table."
  value       = module.tideline.table_name
}

output "stream_arn" {
  description = "ARN of the events table's stream."
  value       = module.tideline.stream_arn
}

output "event_bus_name" {
  description = "Name of the event bus."
  value       = module.tideline.event_bus_name
}

output "event_bus_arn" {
  description = "ARN of the event bus."
  value       = module.tideline.event_bus_arn
}

output "event_archive_arn" {
  description = "ARN of the bus archive, the source of replays."
  value       = module.tideline.event_archive_arn
}

output "api_execution_arn" {
  description = "Execution ARN of the query API, for execute-api:Invoke grants."
  value       = module.tideline.api_execution_arn
}

output "bus_tap_log_group" {
  description = "Log group with a copy of every event on the bus: aws logs tail <it> --follow."
  value       = module.tideline.bus_tap_log_group
}

output "api_url" {
  description = "Base URL of the query API (SigV4-signed requests)."
  value       = module.tideline.api_url
}

output "responder_function_name" {
  description = "The example consumer's function."
  value       = module.event_responder.function_name
}

output "responder_log_group" {
  description = "The example consumer's log group, to tail."
  value       = module.event_responder.log_group_name
}

output "responder_read_model_table" {
  description = "The example consumer's read model table."
  value       = aws_dynamodb_table.responder_read_model.name
}

output "realtime_websocket_url" {
  description = "Where realtime clients connect (`tideline subscribe --endpoint`), when realtime_jwks_file is set; null otherwise."
  value       = module.tideline.realtime_websocket_url
}
