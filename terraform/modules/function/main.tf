# One Lambda function built by cargo-lambda, with its own role, log group and
# alarms. The role holds only the statements the caller passes in, plus
# writing to its own log group and X-Ray.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  # Null optional values are dropped: the code falls back to its default.
  optional_environment = { for k, v in var.optional_environment : k => v if v != null }
  log_group_name       = "/aws/lambda/${var.name}"
  # Known before the function exists, so the role's policy can name it.
  function_arn = "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:function:${var.name}"

  # scripts/build-lambdas.sh writes the zip's architecture beside it.
  architecture_file  = coalesce(var.architecture_file, "${dirname(var.zip_path)}/architecture")
  built_architecture = try(trimspace(file(local.architecture_file)), "unknown (no ${local.architecture_file})")
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  description        = "Execution role of ${var.name}: only what this function uses."
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    # X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level
    # permissions: AWS requires Resource "*" for them.
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    # Environment variables are encrypted with the pipeline key; Lambda
    # decrypts them with this role under the encryption context
    # aws:lambda:FunctionArn, so the grant covers this function's variables
    # and nothing else encrypted with the key.
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:lambda:FunctionArn"
      values   = [local.function_arn]
    }
  }

  dynamic "statement" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]
    content {
      sid       = "SendFailedAsyncInvocationsToDeadLetterQueue"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The functions call only AWS public endpoints (SQS, DynamoDB, EventBridge, X-Ray); a VPC would add NAT or endpoints and cold-start cost without isolating anything.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and a signed artefact in S3; the zip is uploaded directly from the cargo-lambda build and pinned by source_code_hash.
  #checkov:skip=CKV_AWS_116:An async-invocation DLQ applies only to asynchronous invokes: it is set (dead_letter_target_arn) for EventBridge consumers; Firehose and API Gateway invoke synchronously and event source mappings use the queue redrive DLQ and the stream on-failure destination instead.
  function_name = var.name
  description   = var.description
  role          = aws_iam_role.this.arn

  # cargo-lambda builds a static `bootstrap` executable for the OS-only runtime.
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  # Build first, then apply: filebase64sha256 fails at plan time if the zip is
  # missing, rather than deploying stale code.
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)

  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = merge(var.environment, local.optional_environment)
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "dead_letter_config" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]
    content {
      target_arn = dead_letter_config.value
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      # A zip built for the other instruction set deploys fine and then fails
      # at every invoke: stop the plan instead.
      condition     = local.built_architecture == var.architecture
      error_message = "${var.zip_path} was built for ${local.built_architecture}, but the function is deployed as ${var.architecture}. Build with `scripts/build-lambdas.sh${var.architecture == "x86_64" ? " --x86-64" : ""}` (it writes ${local.architecture_file}), or set the architecture variable to what was built."
    }
  }

  # The log group must exist before the first invocation, or Lambda creates an
  # unencrypted one that never expires; the policy must exist before any
  # event source mapping validates the role.
  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "${var.name} returned errors: a batch, record or request failed and will be retried or dead-lettered."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
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

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${var.name}-throttles"
  alarm_description   = "${var.name} was throttled: raise its reserved concurrency or the account quota."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
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
