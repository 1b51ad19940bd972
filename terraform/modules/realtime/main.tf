# Realtime fan-out (docs/realtime.md, decision 0023): end-user clients
# connect to a WebSocket API with a bearer token, subscribe to topics (event
# types) and entities their claims allow, and a relay bound to the bus posts
# each event to its subscribers.
#
#   client ─wss─▶ WebSocket API ─$connect─▶ realtime-authorizer (JWT vs JWKS)
#                               ─routes──▶ realtime-routes ─▶ connections table
#   bus ─rule─▶ realtime-relay ─Query─▶ connections table
#                              ─PostToConnection─▶ clients
#   HTTP API ─POST/DELETE /subscriptions─▶ realtime-subscriptions
#
# Off by default in the root module (var.realtime.enabled).

data "aws_region" "current" {}

locals {
  kms_via_dynamodb = "dynamodb.${data.aws_region.current.name}.amazonaws.com"
  # PostToConnection and DeleteConnection on this API's stage only.
  manage_connections_arn = "${aws_apigatewayv2_api.ws.execution_arn}/${var.stage_name}/*/@connections/*"
  # The Management API's endpoint: the stage's HTTPS URL.
  management_endpoint = "https://${aws_apigatewayv2_api.ws.id}.execute-api.${data.aws_region.current.name}.amazonaws.com/${var.stage_name}"
  connections_table   = aws_dynamodb_table.connections.name

  use_key_for = [
    for table in [aws_dynamodb_table.connections.name, var.events_table_name] : table
  ]
}

# --------------------------------------------------------- connections table

# One item per connection (pk = conn#<id>) and one per subscription
# (pk = sub#<topic>#<entity|*>, sk = connection id): the relay finds an
# event's subscribers with a Query per key, never a Scan. Every item expires
# with its connection (API Gateway closes a connection after 2 hours).
resource "aws_dynamodb_table" "connections" {
  name         = "${var.name}-connections"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}

# -------------------------------------------------------------- WebSocket API

resource "aws_apigatewayv2_api" "ws" {
  name          = "${var.name}-ws"
  protocol_type = "WEBSOCKET"
  # {"action": "subscribe", …}: what docs/realtime.md's protocol sends.
  route_selection_expression = "$request.body.action"
  tags                       = var.tags
}

resource "aws_apigatewayv2_authorizer" "token" {
  api_id          = aws_apigatewayv2_api.ws.id
  name            = "${var.name}-token"
  authorizer_type = "REQUEST"
  authorizer_uri  = module.authorizer.invoke_arn
  # No identity source: the token may come in the Authorization header or
  # in ?token= (browsers cannot set headers on a WebSocket), so the
  # authorizer runs on every $connect, uncached.
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowInvokeFromWebSocketApi"
  action        = "lambda:InvokeFunction"
  function_name = module.authorizer.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.ws.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.token.id}"
}

resource "aws_apigatewayv2_integration" "routes" {
  api_id             = aws_apigatewayv2_api.ws.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = module.routes.invoke_arn
}

resource "aws_apigatewayv2_route" "connect" {
  api_id             = aws_apigatewayv2_api.ws.id
  route_key          = "$connect"
  target             = "integrations/${aws_apigatewayv2_integration.routes.id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.token.id
}

# Later messages ride on the connection $connect authorized; API Gateway
# passes the authorizer's context (the claims) to every route.
resource "aws_apigatewayv2_route" "message" {
  #checkov:skip=CKV_AWS_309:Only $connect takes an authorizer on a WebSocket API; these routes run on the connection it authorized.
  for_each = toset(["$disconnect", "subscribe", "unsubscribe"])

  api_id             = aws_apigatewayv2_api.ws.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.routes.id}"
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "routes" {
  statement_id  = "AllowInvokeFromWebSocketApi"
  action        = "lambda:InvokeFunction"
  function_name = module.routes.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.ws.execution_arn}/${var.stage_name}/*"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}-ws/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "live" {
  #checkov:skip=CKV2_AWS_51:The clients are end users' browsers and apps, which cannot present a client certificate on a WebSocket; each authenticates with a JWT the $connect authorizer checks.
  api_id      = aws_apigatewayv2_api.ws.id
  name        = var.stage_name
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId    = "$context.requestId"
      connectionId = "$context.connectionId"
      routeKey     = "$context.routeKey"
      eventType    = "$context.eventType"
      status       = "$context.status"
      error        = "$context.error.message"
      authorizer   = "$context.authorizer.error"
    })
  }

  tags = var.tags

  depends_on = [aws_apigatewayv2_route.connect, aws_apigatewayv2_route.message]
}

# ------------------------------------------------------------------ functions

module "authorizer" {
  source = "../function"

  name               = "${var.name}-realtime-authorizer"
  description        = "Checks a WebSocket client's JWT against the configured JWKS and issuer on $connect."
  zip_path           = "${var.lambda_zip_dir}/realtime-authorizer/bootstrap.zip"
  architecture       = var.architecture
  memory_mb          = 128
  timeout_seconds    = 5
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  alarm_actions      = var.alarm_actions
  tags               = var.tags

  environment = {
    TIDELINE_REALTIME_JWKS = var.jwks
  }
  optional_environment = {
    TIDELINE_REALTIME_ISSUER = var.issuer
  }

  # It reads its environment only: no AWS call.
  policy_statements = []
}

module "routes" {
  source = "../function"

  name               = "${var.name}-realtime-routes"
  description        = "WebSocket routes: $connect, $disconnect, subscribe (with the missed events) and unsubscribe."
  zip_path           = "${var.lambda_zip_dir}/realtime-routes/bootstrap.zip"
  architecture       = var.architecture
  memory_mb          = 256
  timeout_seconds    = 29
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  alarm_actions      = var.alarm_actions
  tags               = var.tags

  environment = {
    TIDELINE_TABLE_NAME                   = var.events_table_name
    TIDELINE_CONNECTIONS_TABLE            = local.connections_table
    TIDELINE_REALTIME_MANAGEMENT_ENDPOINT = local.management_endpoint
  }

  policy_statements = [
    {
      # tideline-aws/src/realtime.rs: connections and subscriptions are put,
      # updated (a connection's list of subscriptions), and on $disconnect
      # read and deleted (terraform/iam-calls.json, recorded on moto).
      sid        = "Connections"
      actions    = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
      resources  = [aws_dynamodb_table.connections.arn]
      conditions = []
    },
    {
      # A subscribe with `since` reads the missed events (the query path).
      sid        = "ReadMissedEvents"
      actions    = ["dynamodb:GetItem", "dynamodb:Query"]
      resources  = [var.events_table_arn]
      conditions = []
    },
    {
      # `subscribed`, `refused` and the missed events go back on the connection.
      sid        = "PostToConnections"
      actions    = ["execute-api:ManageConnections"]
      resources  = [local.manage_connections_arn]
      conditions = []
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = local.use_key_for },
      ]
    },
  ]
}

module "relay" {
  source = "../function"

  name               = "${var.name}-realtime-relay"
  description        = "Posts each bus event to the WebSocket connections subscribed to its type and entity."
  zip_path           = "${var.lambda_zip_dir}/realtime-relay/bootstrap.zip"
  architecture       = var.architecture
  memory_mb          = 256
  timeout_seconds    = 60
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  alarm_actions      = var.alarm_actions
  tags               = var.tags

  dead_letter_target_arn = module.dlq.arn

  environment = {
    TIDELINE_CONNECTIONS_TABLE            = local.connections_table
    TIDELINE_REALTIME_MANAGEMENT_ENDPOINT = local.management_endpoint
  }
  optional_environment = {
    TIDELINE_RELAY_CONCURRENCY = var.relay_concurrency == null ? null : tostring(var.relay_concurrency)
  }

  policy_statements = [
    {
      # Subscribers by Query (never a Scan); a gone connection is read and
      # deleted with its subscriptions (GetItem, DeleteItem: moto never
      # answers GoneException, so the roles check records the Query only;
      # crates/tideline-aws/tests/realtime_relay.rs covers the cleanup).
      sid        = "FindAndForgetSubscribers"
      actions    = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:DeleteItem"]
      resources  = [aws_dynamodb_table.connections.arn]
      conditions = []
    },
    {
      sid        = "PostToConnections"
      actions    = ["execute-api:ManageConnections"]
      resources  = [local.manage_connections_arn]
      conditions = []
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [aws_dynamodb_table.connections.name] },
      ]
    },
    {
      # Failed asynchronous invocations go to the SSE-KMS DLQ with this role.
      sid       = "EncryptDeadLetters"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = ["sqs.${data.aws_region.current.name}.amazonaws.com"] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:sqs:arn", values = [module.dlq.arn] },
      ]
    },
  ]
}

module "subscriptions" {
  source = "../function"

  name               = "${var.name}-realtime-subscriptions"
  description        = "Server-side subscription management: POST /subscriptions, DELETE /subscriptions/{id}."
  zip_path           = "${var.lambda_zip_dir}/realtime-subscriptions/bootstrap.zip"
  architecture       = var.architecture
  memory_mb          = 128
  timeout_seconds    = 10
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  alarm_actions      = var.alarm_actions
  tags               = var.tags

  environment = {
    TIDELINE_CONNECTIONS_TABLE = local.connections_table
  }

  policy_statements = [
    {
      # POST puts the subscription items and adds them to the connection's
      # list; DELETE removes both.
      sid        = "Subscriptions"
      actions    = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources  = [aws_dynamodb_table.connections.arn]
      conditions = []
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [aws_dynamodb_table.connections.name] },
      ]
    },
  ]
}

# ------------------------------------------------------------- the bus rule

module "dlq" {
  source = "../dlq"

  name                  = "${var.name}-realtime-relay-dlq"
  purpose               = "Events the realtime relay could not deliver to its subscribers after every retry. Subscribers that reconnect with `since` read them from the store; nothing is lost from the store."
  kms_key_arn           = var.kms_key_arn
  eventbridge_rule_arns = [aws_cloudwatch_event_rule.relay.arn]
  alarm_actions         = var.alarm_actions
  tags                  = var.tags
}

resource "aws_cloudwatch_event_rule" "relay" {
  name           = "${var.name}-realtime-relay"
  description    = "Every Tideline integration event (bundles included) to the realtime relay."
  event_bus_name = var.event_bus_name
  event_pattern  = jsonencode({ source = [var.event_source] })
  state          = "ENABLED"
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "relay" {
  rule           = aws_cloudwatch_event_rule.relay.name
  event_bus_name = var.event_bus_name
  target_id      = "realtime-relay"
  arn            = module.relay.function_arn

  retry_policy {
    maximum_retry_attempts       = 8
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = module.dlq.arn
  }
}

resource "aws_lambda_permission" "relay" {
  statement_id  = "AllowInvokeFromRule"
  action        = "lambda:InvokeFunction"
  function_name = module.relay.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.relay.arn
}

# ------------------------------------------- server-side management routes

resource "aws_apigatewayv2_integration" "subscriptions" {
  api_id                 = var.http_api_id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = module.subscriptions.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "subscriptions" {
  for_each = toset(["POST /subscriptions", "DELETE /subscriptions/{id}"])

  api_id               = var.http_api_id
  route_key            = each.key
  target               = "integrations/${aws_apigatewayv2_integration.subscriptions.id}"
  authorization_type   = var.http_api_authorization
  authorizer_id        = var.http_api_authorization == "JWT" ? var.http_api_authorizer_id : null
  authorization_scopes = var.http_api_authorization == "JWT" ? var.write_scopes : null
}

resource "aws_lambda_permission" "subscriptions" {
  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.subscriptions.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${var.http_api_execution_arn}/*/*/subscriptions*"
}

# ------------------------------------------------------------------- alarms

resource "aws_cloudwatch_metric_alarm" "connect_errors" {
  alarm_name          = "${var.name}-realtime-connect-errors"
  alarm_description   = "WebSocket $connect or message routes answered server errors."
  namespace           = "AWS/ApiGateway"
  metric_name         = "IntegrationError"
  dimensions          = { ApiId = aws_apigatewayv2_api.ws.id, Stage = var.stage_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
