output "arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.this.arn
}

output "url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.this.id
}

output "name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.this.name
}

output "alarm_arn" {
  description = "ARN of the depth alarm."
  value       = aws_cloudwatch_metric_alarm.depth.arn
}
