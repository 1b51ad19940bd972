output "function_name" {
  description = "Name of the consumer function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the consumer function."
  value       = module.function.function_arn
}

output "rule_arn" {
  description = "ARN of the EventBridge rule bound to the consumer."
  value       = aws_cloudwatch_event_rule.this.arn
}

output "event_pattern" {
  description = "The rule's event pattern: the handler registry's (event_pattern_json) when given, else the rules file's."
  value       = aws_cloudwatch_event_rule.this.event_pattern
}

output "checkpoint_table_name" {
  description = "Name of the consumer's checkpoint table."
  value       = aws_dynamodb_table.checkpoints.name
}

output "dlq_url" {
  description = "URL of the consumer's dead-letter queue."
  value       = module.dlq.url
}

output "log_group_name" {
  description = "The consumer's log group."
  value       = module.function.log_group_name
}
