output "websocket_url" {
  description = "Where clients connect: wss://…/<stage> (tideline subscribe --endpoint)."
  value       = aws_apigatewayv2_stage.live.invoke_url
}

output "websocket_api_id" {
  description = "The WebSocket API's id."
  value       = aws_apigatewayv2_api.ws.id
}

output "connections_table_name" {
  description = "The connections and subscriptions table."
  value       = aws_dynamodb_table.connections.name
}

output "function_names" {
  description = "The realtime functions, by binary."
  value = {
    "realtime-authorizer"    = module.authorizer.function_name
    "realtime-routes"        = module.routes.function_name
    "realtime-relay"         = module.relay.function_name
    "realtime-subscriptions" = module.subscriptions.function_name
  }
}

output "alarm_arns" {
  description = "The realtime alarms."
  value = concat(
    [aws_cloudwatch_metric_alarm.connect_errors.arn],
    module.authorizer.alarm_arns, module.routes.alarm_arns, module.relay.alarm_arns, module.subscriptions.alarm_arns,
  )
}

output "relay_policy_statements" {
  description = "The relay's policy statements (for the tests)."
  value       = module.relay.policy_statements
}
