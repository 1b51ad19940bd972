output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream producers write to."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "bucket_name" {
  description = "Name of the data lake bucket."
  value       = aws_s3_bucket.lake.id
}

output "bucket_arn" {
  description = "ARN of the data lake bucket."
  value       = aws_s3_bucket.lake.arn
}

output "access_log_bucket_name" {
  description = "Name of the bucket receiving the data lake's S3 access logs."
  value       = aws_s3_bucket.access_logs.id
}

output "firehose_role_arn" {
  description = "ARN of the role Firehose assumes."
  value       = aws_iam_role.firehose.arn
}

output "alarm_arns" {
  description = "ARNs of the Firehose alarms."
  value = [
    aws_cloudwatch_metric_alarm.delivery_failed.arn,
    aws_cloudwatch_metric_alarm.processing_failed.arn,
    aws_cloudwatch_metric_alarm.data_freshness.arn,
    aws_cloudwatch_metric_alarm.throttled_records.arn,
    aws_cloudwatch_metric_alarm.partition_count_exceeded.arn,
  ]
}

output "glue_database" {
  description = "Glue database holding the lake tables events and processing_failed."
  value       = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  description = "Athena workgroup for lake queries (encrypted results, scan cap)."
  value       = aws_athena_workgroup.lake.name
}

output "processor_parameters" {
  description = "The transformer processor's parameters as planned (Firehose's defaults included), for tests and dashboards."
  value       = local.processor_parameters
}
