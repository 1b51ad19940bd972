# A rule-bound consumer: one Lambda zip, one rule from the shared rules file,
# on the Tideline bus. The bus delivers at least once and in no particular
# order, so the consumer keeps a per-entity checkpoint (last `sequence` seen)
# in its own table to drop duplicates and detect gaps.
#
# Failure path: EventBridge retries delivery (retry_policy), then sends the
# event to the DLQ; once delivered, a function error is retried by Lambda's
# asynchronous invocation (up to 2 times), then the event goes to the same DLQ.

locals {
  rules    = jsondecode(file(var.rules_file))
  matching = [for r in local.rules : r if try(r.name, null) == var.rule_name]
  rule     = try(local.matching[0], null)

  # Set by the module for every consumer; the consistency test reads this map.
  managed_environment = {
    TIDELINE_CONSUMER_NAME    = var.name
    TIDELINE_CHECKPOINT_TABLE = aws_dynamodb_table.checkpoints.name
  }

  table_arns = concat([aws_dynamodb_table.checkpoints.arn], var.table_arns)
}

resource "aws_dynamodb_table" "checkpoints" {
  name         = "${var.name}-checkpoints"
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

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.checkpoint_table_deletion_protection
  tags                        = var.tags
}

module "dlq" {
  source = "../dlq"

  name                  = "${var.name}-dlq"
  purpose               = "Events consumer ${var.name} could not process or was not delivered. The consumer missed them: fix the cause, then redrive or replay from the bus archive."
  kms_key_arn           = var.kms_key_arn
  eventbridge_rule_arns = [aws_cloudwatch_event_rule.this.arn]
  alarm_actions         = var.alarm_actions
  tags                  = var.tags
}

module "function" {
  source = "../function"

  name                 = var.name
  description          = "Tideline consumer ${var.name}, bound to rule ${var.rule_name}."
  zip_path             = var.zip_path
  architecture         = var.architecture
  memory_mb            = var.memory_mb
  timeout_seconds      = var.timeout_seconds
  reserved_concurrency = var.reserved_concurrency
  kms_key_arn          = var.kms_key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions
  tags                 = var.tags

  environment          = merge(var.environment, local.managed_environment)
  optional_environment = var.optional_environment

  dead_letter_target_arn = module.dlq.arn

  policy_statements = concat([
    {
      sid        = "CheckpointAndReadModelTables"
      actions    = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      resources  = concat(local.table_arns, [for arn in local.table_arns : "${arn}/index/*"])
      conditions = []
    },
    {
      # DynamoDB tables and the DLQ are encrypted with the pipeline key.
      sid       = "UseKeyThroughDynamoDbAndSqs"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
      resources = [var.kms_key_arn]
      conditions = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${data.aws_region.current.name}.amazonaws.com", "sqs.${data.aws_region.current.name}.amazonaws.com"]
      }]
    },
  ], var.policy_statements)
}

data "aws_region" "current" {}

resource "aws_cloudwatch_event_rule" "this" {
  name           = var.name
  description    = "Routes rule ${var.rule_name} of ${basename(var.rules_file)} to consumer ${var.name}."
  event_bus_name = var.event_bus_name
  event_pattern  = jsonencode(try(local.rule.event_pattern, {}))
  state          = "ENABLED"
  tags           = var.tags

  lifecycle {
    precondition {
      condition     = length(local.matching) == 1
      error_message = "${var.rules_file} must contain exactly one rule named \"${var.rule_name}\" (found ${length(local.matching)})."
    }

    precondition {
      condition     = try(local.rule.target.type, "") == "lambda"
      error_message = "Rule \"${var.rule_name}\" in ${var.rules_file} must have a target of type \"lambda\" to be deployed as a consumer."
    }

    precondition {
      condition     = can(keys(local.rule.event_pattern))
      error_message = "Rule \"${var.rule_name}\" in ${var.rules_file} needs an event_pattern object."
    }
  }
}

resource "aws_cloudwatch_event_target" "this" {
  rule           = aws_cloudwatch_event_rule.this.name
  event_bus_name = var.event_bus_name
  target_id      = "consumer"
  arn            = module.function.function_arn

  retry_policy {
    maximum_retry_attempts       = var.target_maximum_retry_attempts
    maximum_event_age_in_seconds = var.target_maximum_event_age_seconds
  }

  dead_letter_config {
    arn = module.dlq.arn
  }
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowInvokeFromRule"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this.arn
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = module.function.function_name
  maximum_retry_attempts       = var.async_maximum_retry_attempts
  maximum_event_age_in_seconds = var.async_maximum_event_age_seconds
}

resource "aws_cloudwatch_metric_alarm" "failed_invocations" {
  alarm_name        = "${var.name}-rule-failed-invocations"
  alarm_description = "EventBridge could not deliver events to ${var.name}; after retries they go to ${module.dlq.name}."
  namespace         = "AWS/Events"
  metric_name       = "FailedInvocations"
  dimensions = {
    EventBusName = var.event_bus_name
    RuleName     = aws_cloudwatch_event_rule.this.name
  }
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
