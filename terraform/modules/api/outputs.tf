output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_url" {
  description = "Base URL of the query API."
  # The $default stage's invoke URL ends in "/"; paths are appended to it
  # with their own leading slash.
  value = trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")
}

output "execution_arn" {
  description = "Execution ARN; grant execute-api:Invoke on <execution_arn>/*/GET/* to callers when authorization is AWS_IAM."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "authorizer_id" {
  description = "The JWT authorizer's id when authorization is JWT, else null: routes added by other modules (realtime's /subscriptions) use it."
  value       = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}
