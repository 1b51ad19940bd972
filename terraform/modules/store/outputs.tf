output "table_name" {
  description = "Name of the events table."
  value       = aws_dynamodb_table.events.name
}

output "table_arn" {
  description = "ARN of the events table."
  value       = aws_dynamodb_table.events.arn
}

output "stream_arn" {
  description = "ARN of the table's NEW_AND_OLD_IMAGES stream."
  value       = aws_dynamodb_table.events.stream_arn
}

output "stream_label" {
  description = "Label (timestamp) of the table's stream."
  value       = aws_dynamodb_table.events.stream_label
}
