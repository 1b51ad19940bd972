output "bus_arn" {
  description = "ARN of the enhanced custom event bus (the emitter's TIDELINE_ORDERED_BUS_ARN)."
  value       = aws_cloudformation_stack.this.outputs["BusArn"]
}

output "subscriber_arn" {
  description = "ARN of the FIFO subscriber."
  value       = aws_cloudformation_stack.this.outputs["SubscriberArn"]
}

output "queue_url" {
  description = "URL of the FIFO queue the subscriber delivers to, in per-entity order."
  value       = aws_sqs_queue.subscriber.url
}

output "queue_arn" {
  description = "ARN of the FIFO queue the subscriber delivers to."
  value       = aws_sqs_queue.subscriber.arn
}

output "delivery_failures_queue_url" {
  description = "URL of the queue receiving events the bus could not deliver."
  value       = aws_sqs_queue.delivery_failures.url
}

output "template" {
  description = "The CloudFormation template, decoded (tests assert on it)."
  value       = jsondecode(aws_cloudformation_stack.this.template_body)
}
