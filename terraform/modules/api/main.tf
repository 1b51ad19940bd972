# An HTTP API in front of query-api (GET) and command-api (POST
# /entities/{entity_id}/events, decision 0020). IAM (SigV4) authorization by
# default, so nothing is public unless a JWT issuer is configured on purpose;
# with JWT, the same authorizer guards both, and appending needs a scope of
# its own (write_scopes).

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "Tideline query API: entity histories and events."
  tags          = var.tags
}

resource "aws_apigatewayv2_integration" "query" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = var.function_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_ms
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count            = var.authorization == "JWT" ? 1 : 0
  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_route" "get" {
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "GET /{proxy+}"
  target             = "integrations/${aws_apigatewayv2_integration.query.id}"
  authorization_type = var.authorization
  authorizer_id      = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

resource "aws_apigatewayv2_integration" "command" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = var.command_invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_ms
}

resource "aws_apigatewayv2_route" "append" {
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "POST /entities/{entity_id}/events"
  target             = "integrations/${aws_apigatewayv2_integration.command.id}"
  authorization_type = var.authorization
  authorizer_id      = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
  # Reading needs a valid token; appending needs the write scope too.
  authorization_scopes = var.authorization == "JWT" ? var.write_scopes : null
}

# Aggregates' snapshots (the command side, docs/command-side.md): read and
# written by the event store client beside the events, through the command
# function. Both need the write scope: a snapshot steers every later load.
resource "aws_apigatewayv2_route" "snapshot" {
  for_each = toset(["GET", "PUT"])

  api_id               = aws_apigatewayv2_api.this.id
  route_key            = "${each.key} /entities/{entity_id}/snapshots/{name}"
  target               = "integrations/${aws_apigatewayv2_integration.command.id}"
  authorization_type   = var.authorization
  authorizer_id        = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
  authorization_scopes = var.authorization == "JWT" ? var.write_scopes : null
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      error              = "$context.error.message"
      authorizerError    = "$context.authorizer.error"
      caller             = "$context.identity.caller"
      sourceIp           = "$context.identity.sourceIp"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's GET routes may invoke the function.
  source_arn = "${aws_apigatewayv2_api.this.execution_arn}/*/GET/*"
}

resource "aws_lambda_permission" "command" {
  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = var.command_function_name
  principal     = "apigateway.amazonaws.com"
  # Only this API's append route may invoke the command function.
  source_arn = "${aws_apigatewayv2_api.this.execution_arn}/*/POST/entities/*"
}

resource "aws_lambda_permission" "snapshots" {
  statement_id  = "AllowSnapshotsFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = var.command_function_name
  principal     = "apigateway.amazonaws.com"
  # The snapshot routes (GET and PUT) may invoke the command function too.
  source_arn = "${aws_apigatewayv2_api.this.execution_arn}/*/*/entities/*/snapshots/*"
}

resource "aws_cloudwatch_metric_alarm" "server_errors" {
  alarm_name          = "${var.name}-5xx"
  alarm_description   = "The query API returned server errors."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id, Stage = "$default" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "latency" {
  alarm_name          = "${var.name}-latency"
  alarm_description   = "The query API's p99 latency is above ${var.latency_alarm_ms} ms (the integration times out at ${var.integration_timeout_ms} ms)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id, Stage = "$default" }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.latency_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
