output "arn" {
  description = "ARN of the FIFO queue."
  value       = aws_sqs_queue.this.arn
}

output "url" {
  description = "URL of the FIFO queue (TIDELINE_QUEUE_URL)."
  value       = aws_sqs_queue.this.id
}

output "name" {
  description = "Name of the FIFO queue."
  value       = aws_sqs_queue.this.name
}

output "dlq_arn" {
  description = "ARN of the FIFO dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the FIFO dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_name" {
  description = "Name of the FIFO dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}
