output "delivery_stream_name" {
  description = "Firehose delivery stream producers (and the generator) write to."
  value       = module.ingest.delivery_stream_name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream; grant firehose:PutRecordBatch on it to producers."
  value       = module.ingest.delivery_stream_arn
}

output "data_lake_bucket" {
  description = "S3 data lake bucket (events/ and processing-failed/ prefixes)."
  value       = module.ingest.bucket_name
}

output "lake_glue_database" {
  description = "Glue database of the lake tables (events, processing_failed) for Athena."
  value       = module.ingest.glue_database
}

output "athena_workgroup" {
  description = "Athena workgroup for lake queries: encrypted results, capped scans."
  value       = module.ingest.athena_workgroup
}

output "queue_url" {
  description = "URL of the FIFO queue."
  value       = module.queue.url
}

output "queue_dlq_url" {
  description = "URL of the FIFO dead-letter queue."
  value       = module.queue.dlq_url
}

output "table_name" {
  description = "Name of the events table."
  value       = module.store.table_name
}

output "table_arn" {
  description = "ARN of the events table."
  value       = module.store.table_arn
}

output "stream_arn" {
  description = "ARN of the events table's stream."
  value       = module.store.stream_arn
}

output "stream_failures_queue_url" {
  description = "URL of the queue receiving stream batches the emitter gave up on."
  value       = module.stream_failures.url
}

output "event_bus_name" {
  description = "Name of the custom event bus consumers subscribe to."
  value       = module.bus.bus_name
}

output "event_bus_arn" {
  description = "ARN of the custom event bus."
  value       = module.bus.bus_arn
}

output "event_archive_arn" {
  description = "ARN of the bus archive, the source of replays."
  value       = module.bus.archive_arn
}

output "bus_tap_log_group" {
  description = "Log group with a copy of every event, to tail (null unless enable_bus_tap)."
  value       = module.bus.tap_log_group_name
}

output "event_source" {
  description = "The `source` of every published event."
  value       = var.event_source
}

output "api_url" {
  description = "Base URL of the query API."
  value       = module.api.api_url
}

output "api_execution_arn" {
  description = "Execution ARN of the query API, for execute-api:Invoke grants."
  value       = module.api.execution_arn
}

output "kms_key_arn" {
  description = "ARN of the pipeline's KMS key; pass it to consumer modules."
  value       = module.key.key_arn
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies; pass it to consumer modules."
  value       = aws_sns_topic.alarms.arn
}

output "function_names" {
  description = "Name of each deployed function, by binary."
  value = {
    transformer     = module.transformer.function_name
    "event-storer"  = module.event_storer.function_name
    "event-emitter" = module.event_emitter.function_name
    "query-api"     = module.query_api.function_name
    "command-api"   = module.command_api.function_name
  }
}

output "log_retention_days" {
  description = "Log retention used by the stack, for consumers to match."
  value       = var.log_retention_days
}

output "lambda_architecture" {
  description = "Instruction set of the stack's functions, for consumers to match."
  value       = var.lambda_architecture
}

output "ordered_bus_arn" {
  description = "ARN of the enhanced custom event bus the emitter publishes to (null unless ordered_bus)."
  value       = var.ordered_bus ? module.ordered_bus[0].bus_arn : null
}

output "ordered_queue_url" {
  description = "FIFO queue the ordered bus's subscriber delivers to, in per-entity order (null unless ordered_bus)."
  value       = var.ordered_bus ? module.ordered_bus[0].queue_url : null
}

output "realtime_websocket_url" {
  description = "Where realtime clients connect (wss://…/live), when realtime is enabled; null otherwise."
  value       = var.realtime.enabled ? module.realtime[0].websocket_url : null
}

output "realtime_function_names" {
  description = "The realtime functions by binary, when realtime is enabled."
  value       = var.realtime.enabled ? module.realtime[0].function_names : {}
}
