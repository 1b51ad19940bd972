output "bus_name" {
  description = "Name of the custom event bus."
  value       = aws_cloudwatch_event_bus.this.name
}

output "bus_arn" {
  description = "ARN of the custom event bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "archive_arn" {
  description = "ARN of the bus archive (source of replays)."
  value       = aws_cloudwatch_event_archive.this.arn
}

output "archive_name" {
  description = "Name of the bus archive."
  value       = aws_cloudwatch_event_archive.this.name
}

output "schema_registry_name" {
  description = "Name of the schema registry, or null when no schema is registered."
  value       = local.register_schema ? aws_schemas_registry.this[0].name : null
}

output "tap_log_group_name" {
  description = "Log group holding a copy of every event (null unless enable_tap)."
  value       = var.enable_tap ? aws_cloudwatch_log_group.tap[0].name : null
}
