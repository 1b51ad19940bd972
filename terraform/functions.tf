# One function per binary of the workspace, each with its own role holding
# only the actions it calls, on only the resources it touches. Every
# environment map matches crates/tideline-lambdas/env-contract.json; the
# consistency test (tests/test_consistency.py) enforces it.

locals {
  kms_via_sqs      = "sqs.${local.region}.amazonaws.com"
  kms_via_dynamodb = "dynamodb.${local.region}.amazonaws.com"
  kms_via_s3       = "s3.${local.region}.amazonaws.com"
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
    # The queue's own limit: ingest refuses what the queue would.
    TIDELINE_MAX_MESSAGE_BYTES = tostring(var.queue_max_message_size)
    TIDELINE_FIELD_MAP         = var.transformer_field_map
    # scripts/build-lambdas.sh packs schemas/ into the transformer's zip, which
    # Lambda unpacks under /var/task.
    TIDELINE_SCHEMA_REGISTRY      = var.transformer_schema_registry == null ? null : "/var/task/${var.transformer_schema_registry}"
    TIDELINE_MAX_CONCURRENT_SENDS = tostring(var.transformer_max_concurrent_sends)
    RUST_LOG                      = var.rust_log
  }

  policy_statements = [
    {
      # SendMessageBatch is authorized by sqs:SendMessage.
      sid       = "EnqueueEvents"
      actions   = ["sqs:SendMessage"]
      resources = [module.queue.arn]
    },
    {
      # A producer to an SSE-KMS queue needs a data key (GenerateDataKey) and
      # SQS decrypts it again with the producer's credentials (Decrypt); only
      # through SQS, only for this queue (encryption context aws:sqs:arn).
      sid       = "EncryptQueueMessages"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_sqs] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:sqs:arn", values = [module.queue.arn] },
      ]
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
    TIDELINE_EVENT_TTL_DAYS          = var.event_ttl_days == null ? null : tostring(var.event_ttl_days)
    TIDELINE_REJECTED_TTL_DAYS       = var.rejected_ttl_days == null ? null : tostring(var.rejected_ttl_days)
    TIDELINE_MAX_CONCURRENT_ENTITIES = tostring(var.storer_max_concurrent_entities)
    RUST_LOG                         = var.rust_log
  }

  policy_statements = [
    {
      # What the SQS event source mapping calls with the function's role
      # (the AWSLambdaSQSQueueExecutionRole set); the handler itself makes no
      # SQS call: it reports failures in its response.
      sid       = "ConsumeQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [module.queue.arn]
    },
    {
      # Receiving from the SSE-KMS queue decrypts its data key.
      sid       = "DecryptQueueMessages"
      actions   = ["kms:Decrypt"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_sqs] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:sqs:arn", values = [module.queue.arn] },
      ]
    },
    {
      # tideline-aws/src/store.rs (the slot protocol of
      # tideline-stages/src/store/slot.rs): Query reads an entity's latest
      # event on the base table (consistent) before every append; GetItem
      # reads a marker or slot; PutItem appends conditionally and writes
      # rejected records; TransactWriteItems of Puts is authorized per item
      # by PutItem. The operations the code makes are checked against this
      # statement by scripts/apply-terraform.sh (moto, IAM enforced).
      sid       = "AppendEvents"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
      resources = [module.store.table_arn]
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [module.store.table_name] },
      ]
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
    # Ordered mode: the enhanced custom event bus (decision 0013).
    TIDELINE_BUS_MODE        = var.ordered_bus ? "ordered" : null
    TIDELINE_ORDERED_BUS_ARN = var.ordered_bus ? module.ordered_bus[0].bus_arn : null
    # Bundled emission (decision 0014): off unless more than 1.
    TIDELINE_BUNDLE_MAX_EVENTS = var.bundle_max_events > 1 ? tostring(var.bundle_max_events) : null
    RUST_LOG                   = var.rust_log
  }

  policy_statements = concat([
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
      # The stream event source mapping sends failed batch descriptions to
      # the on-failure queue with the function's role.
      sid       = "SendStreamFailures"
      actions   = ["sqs:SendMessage"]
      resources = [module.stream_failures.arn]
    },
    {
      sid       = "EncryptStreamFailureMessages"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_sqs] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:sqs:arn", values = [module.stream_failures.arn] },
      ]
    },
    {
      # The stream's records are encrypted with the table's key.
      sid       = "DecryptStreamRecords"
      actions   = ["kms:Decrypt"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [module.store.table_name] },
      ]
    },
    ],
    # Only the bus the emitter publishes to. EventsV2 signs as "events", so
    # its PutEvents is assumed to be events:PutEvents on the bus ARN (not
    # verified live; docs/ordered-bus.md).
    var.ordered_bus ? [
      {
        sid       = "PublishToOrderedBus"
        actions   = ["events:PutEvents"]
        resources = [module.ordered_bus[0].bus_arn]
      },
      ] : [
      {
        sid       = "PublishToBus"
        actions   = ["events:PutEvents"]
        resources = [module.bus.bus_arn]
      },
  ])
}

module "command_api" {
  source = "./modules/function"

  name                 = "${var.name_prefix}-command-api"
  description          = "Appends events at an expected version (POST /entities/{entity_id}/events) with the storer's own protocol."
  zip_path             = "${local.lambda_zip_dir}/command-api/bootstrap.zip"
  architecture         = var.lambda_architecture
  memory_mb            = var.command_api.memory_mb
  timeout_seconds      = var.command_api.timeout_seconds
  reserved_concurrency = var.command_api.reserved_concurrency
  kms_key_arn          = module.key.key_arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = local.alarm_actions
  tags                 = local.tags

  environment = {
    TIDELINE_TABLE_NAME = module.store.table_name
    # Appended events never pass Firehose: the function writes them to the
    # lake itself, in Firehose's layout (decision 0020).
    TIDELINE_LAKE_BUCKET = module.ingest.bucket_name
  }

  optional_environment = {
    # Appended events expire as the storer's do, and are admitted with
    # ingest's limits and schema registry (decision 0020).
    TIDELINE_EVENT_TTL_DAYS    = var.event_ttl_days == null ? null : tostring(var.event_ttl_days)
    TIDELINE_MAX_MESSAGE_BYTES = tostring(var.queue_max_message_size)
    TIDELINE_SCHEMA_REGISTRY   = var.transformer_schema_registry == null ? null : "/var/task/${var.transformer_schema_registry}"
    RUST_LOG                   = var.rust_log
  }

  policy_statements = [
    {
      # The storer's append (tideline-stages/src/store/slot.rs through
      # tideline-aws/src/store.rs): Query reads the entity's latest event,
      # GetItem a marker or the head, PutItem appends conditionally;
      # a multi-event command's TransactWriteItems of Puts is authorized per
      # item by PutItem. No queue, stream or bus: the table's stream carries
      # the events out.
      sid       = "AppendEvents"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
      resources = [module.store.table_arn]
    },
    {
      sid       = "UseKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [module.store.table_name] },
      ]
    },
    {
      # tideline-aws/src/lake.rs (S3Lake as the Lake port): one PutObject
      # per partition of a command, under events/ only; never a read, a
      # list or processing-failed/.
      sid       = "WriteLakeEvents"
      actions   = ["s3:PutObject"]
      resources = ["${module.ingest.bucket_arn}/events/*"]
    },
    {
      # The lake is SSE-KMS with a bucket key (modules/ingest): S3 asks
      # KMS for a data key on the function's behalf.
      sid       = "EncryptLakeObjects"
      actions   = ["kms:GenerateDataKey"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_s3] },
        { test = "StringLike", variable = "kms:EncryptionContext:aws:s3:arn", values = [module.ingest.bucket_arn, "${module.ingest.bucket_arn}/*"] },
      ]
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
      # tideline-stages/src/query.rs through tideline-aws/src/store.rs:
      # Query pages an entity's history and reads its latest event on the
      # base table (the table has no index); GetItem reads single items.
      # Read-only.
      sid       = "ReadEvents"
      actions   = ["dynamodb:GetItem", "dynamodb:Query"]
      resources = [module.store.table_arn]
    },
    {
      sid       = "DecryptEvents"
      actions   = ["kms:Decrypt"]
      resources = [module.key.key_arn]
      conditions = [
        { test = "StringEquals", variable = "kms:ViaService", values = [local.kms_via_dynamodb] },
        { test = "StringEquals", variable = "kms:EncryptionContext:aws:dynamodb:tableName", values = [module.store.table_name] },
      ]
    },
  ]
}
