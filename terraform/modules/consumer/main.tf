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

  # The handler registry's pattern wins over the rules file's when given.
  event_pattern = (
    var.event_pattern_json != null
    ? jsonencode(jsondecode(var.event_pattern_json))
    : jsonencode(try(local.rule.event_pattern, {}))
  )

  # Set by the module for every consumer; the consistency test reads this map.
  managed_environment = {
    TIDELINE_CONSUMER_NAME    = var.name
    TIDELINE_CHECKPOINT_TABLE = aws_dynamodb_table.checkpoints.name
  }

  # Table names from ARNs (arn:...:table/<name>), for the KMS encryption
  # context DynamoDB uses.
  table_names = concat([aws_dynamodb_table.checkpoints.name], [for arn in var.table_arns : element(split("/", arn), 1)])
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

  # tideline-consumer/src/dynamodb.rs: the checkpoint is read with GetItem
  # and written with UpdateItem, alone or inside TransactWriteItems together
  # with the handler's items (authorized per item). Nothing queries or
  # deletes checkpoints from the function: `tideline consumer reset` runs
  # with the operator's credentials.
  policy_statements = concat([
    {
      sid        = "Checkpoints"
      actions    = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      resources  = [aws_dynamodb_table.checkpoints.arn]
      conditions = []
    },
    ], length(var.table_arns) == 0 ? [] : [
    {
      # What the handler reads and returns for the transaction: by default
      # Put, Update and Delete items (a handler may delete a read-model row);
      # narrow it with read_model_actions to what the handler really does.
      sid        = "ReadModelTables"
      actions    = var.read_model_actions
      resources  = var.table_arns
      conditions = []
    },
    ], [
    {
      # The checkpoint and read-model tables are encrypted with the pipeline
      # key; only through DynamoDB, only for these tables.
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = ["dynamodb.${data.aws_region.current.name}.amazonaws.com"] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = local.table_names },
      ]
    },
    {
      # Lambda sends failed asynchronous invocations to the SSE-KMS DLQ with
      # the function's role.
      sid       = "EncryptDeadLetters"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = ["sqs.${data.aws_region.current.name}.amazonaws.com"] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:sqs:arn", values = [module.dlq.arn] },
      ]
    },
  ], var.policy_statements)
}

data "aws_region" "current" {}

resource "aws_cloudwatch_event_rule" "this" {
  name           = var.name
  description    = "Routes rule ${var.rule_name} of ${basename(var.rules_file)} to consumer ${var.name}."
  event_bus_name = var.event_bus_name
  event_pattern  = local.event_pattern
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

# A dead letter that cannot be delivered is lost: both paths into the DLQ
# are alarmed (the rule's delivery retries, the function's async retries).
resource "aws_cloudwatch_metric_alarm" "rule_dlq_delivery_failed" {
  alarm_name        = "${var.name}-rule-dlq-delivery-failed"
  alarm_description = "EventBridge could not put undeliverable events for ${var.name} into ${module.dlq.name}: those events are lost. Check the DLQ's policy and key."
  namespace         = "AWS/Events"
  metric_name       = "InvocationsFailedToBeSentToDlq"
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

resource "aws_cloudwatch_metric_alarm" "function_dlq_delivery_failed" {
  alarm_name          = "${var.name}-dead-letter-errors"
  alarm_description   = "Lambda could not send failed invocations of ${var.name} to ${module.dlq.name}: those events are lost. Check the role's sqs:SendMessage and the key."
  namespace           = "AWS/Lambda"
  metric_name         = "DeadLetterErrors"
  dimensions          = { FunctionName = module.function.function_name }
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
