# One function per binary of the workspace, each with its own role holding
# only the actions it calls, on only the resources it touches. Every
# environment map matches crates/tideline-lambdas/env-contract.json; the
# consistency test (tests/test_consistency.py) enforces it.

locals {
  kms_via_sqs      = "sqs.${local.region}.amazonaws.com"
  kms_via_dynamodb = "dynamodb.${local.region}.amazonaws.com"
}

module "transformer" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-transformer"
  description          = "Firehose transformation: validates records and enqueues events to the FIFO queue."
  zip_path             = "${local.lambda_zip_dir}/transformer/bootstrap.zip"
  architecture         = var.lambda_architecture
  memory_mb            = var.transformer.memory_mb
  timeout_seconds      = var.transformer.timeout_seconds
  reserved_concurrency = var.transformer.reserved_concurrency
  kms_key_arn          = module.key.key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = local.alarm_actions
  tags                 = local.tags

  environment = {
    TIDELINE_QUEUE_URL = module.queue.url
  }

  optional_environment = {
    TIDELINE_MAX_RECORD_BYTES = var.transformer_max_record_bytes == null ? null : tostring(var.transformer_max_record_bytes)
    TIDELINE_FIELD_MAP        = var.transformer_field_map
    RUST_LOG                  = var.rust_log
  }

  policy_statements = [
    {
      # SendMessageBatch is authorized by sqs:SendMessage.
      sid       = "EnqueueEvents"
      actions   = ["sqs:SendMessage"]
      resources = [module.queue.arn]
    },
    {
      # A producer to an SSE-KMS queue needs a data key.
      sid       = "EncryptQueueMessages"
      actions   = ["kms:GenerateDataKey"]
      resources = [module.key.key_arn]
      conditions = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.kms_via_sqs]
      }]
    },
  ]
}

module "event_storer" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-event-storer"
  description          = "Consumes the FIFO queue and appends events with a gapless per-entity sequence."
  zip_path             = "${local.lambda_zip_dir}/event-storer/bootstrap.zip"
  architecture         = var.lambda_architecture
  memory_mb            = var.event_storer.memory_mb
  timeout_seconds      = var.event_storer.timeout_seconds
  reserved_concurrency = var.event_storer.reserved_concurrency
  kms_key_arn          = module.key.key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = local.alarm_actions
  tags                 = local.tags

  environment = {
    TIDELINE_TABLE_NAME = module.store.table_name
  }

  optional_environment = {
    TIDELINE_EVENT_TTL_DAYS = var.event_ttl_days == null ? null : tostring(var.event_ttl_days)
    RUST_LOG                = var.rust_log
  }

  policy_statements = [
    {
      # What the SQS event source mapping calls with the function's role.
      sid       = "ConsumeQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      resources = [module.queue.arn]
    },
    {
      # TransactWriteItems is authorized per item by PutItem, UpdateItem and
      # ConditionCheckItem; the sequence is assigned in the same transaction.
      sid       = "AppendEvents"
      actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:Query"]
      resources = [module.store.table_arn, "${module.store.table_arn}/index/*"]
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
      resources = [module.key.key_arn]
      conditions = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.kms_via_dynamodb]
      }]
    },
  ]
}

module "event_emitter" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-event-emitter"
  description          = "Reads the events table's stream and publishes integration events to the bus in per-entity order."
  zip_path             = "${local.lambda_zip_dir}/event-emitter/bootstrap.zip"
  architecture         = var.lambda_architecture
  memory_mb            = var.event_emitter.memory_mb
  timeout_seconds      = var.event_emitter.timeout_seconds
  reserved_concurrency = var.event_emitter.reserved_concurrency
  kms_key_arn          = module.key.key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = local.alarm_actions
  tags                 = local.tags

  environment = {
    TIDELINE_EVENT_BUS_NAME = module.bus.bus_name
  }

  optional_environment = {
    TIDELINE_EVENT_SOURCE = var.event_source
    RUST_LOG              = var.rust_log
  }

  policy_statements = [
    {
      sid       = "ReadStream"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = [module.store.stream_arn]
    },
    {
      # ListStreams is scoped to this table's streams, as in AWS SAM's
      # DynamoDBStreamReadPolicy.
      sid       = "ListTableStreams"
      actions   = ["dynamodb:ListStreams"]
      resources = ["${module.store.table_arn}/stream/*"]
    },
    {
      sid       = "PublishToBus"
      actions   = ["events:PutEvents"]
      resources = [module.bus.bus_arn]
    },
    {
      # The stream event source mapping sends failed batch descriptions to
      # the on-failure queue with the function's role.
      sid       = "SendStreamFailures"
      actions   = ["sqs:SendMessage"]
      resources = [module.stream_failures.arn]
    },
    {
      sid       = "EncryptStreamFailureMessages"
      actions   = ["kms:GenerateDataKey"]
      resources = [module.key.key_arn]
      conditions = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.kms_via_sqs]
      }]
    },
  ]
}

module "query_api" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-query-api"
  description          = "Serves entity histories from the events table over the HTTP API."
  zip_path             = "${local.lambda_zip_dir}/query-api/bootstrap.zip"
  architecture         = var.lambda_architecture
  memory_mb            = var.query_api.memory_mb
  timeout_seconds      = var.query_api.timeout_seconds
  reserved_concurrency = var.query_api.reserved_concurrency
  kms_key_arn          = module.key.key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = local.alarm_actions
  tags                 = local.tags

  environment = {
    TIDELINE_TABLE_NAME = module.store.table_name
  }

  optional_environment = {
    TIDELINE_EVENT_SOURCE = var.event_source
    RUST_LOG              = var.rust_log
  }

  policy_statements = [
    {
      # Read-only: every history read is a paginated Query, single events a GetItem.
      sid       = "ReadEvents"
      actions   = ["dynamodb:Query", "dynamodb:GetItem"]
      resources = [module.store.table_arn, "${module.store.table_arn}/index/*"]
    },
  ]
}
