# Tideline on AWS. The modules are named after the flow of an event:
#
#   producers -> ingest (Firehose -> transformer -> S3 data lake)
#             -> queue  (SQS FIFO: per-entity order, de-duplication, DLQ)
#             -> store  (event-storer -> DynamoDB, conditional append)
#             -> stream (event-emitter reads NEW_AND_OLD_IMAGES)
#             -> bus    (EventBridge custom bus + archive)
#             -> consumer modules (rule-bound Lambdas), and the query api.
#
# Functions are wired in functions.tf (one role each, least privilege) and
# triggered in triggers.tf (the two event source mappings).

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name

  # low_latency: no waiting to fill a batch on the two hops that wait by
  # default (docs/realtime.md, "Latency budget").
  processor_buffer_interval_seconds = var.low_latency ? 0 : var.firehose_processor_buffer_interval_seconds
  emitter_batching_window_seconds   = var.low_latency ? 0 : var.emitter_batching_window_seconds
  tags                              = merge(var.tags, { "tideline:stack" = var.name_prefix })

  # cargo lambda build writes target/lambda/<binary>/bootstrap.zip at the
  # workspace root; path.module is terraform/ whether this module is applied
  # directly or called from examples/complete.
  lambda_zip_dir = coalesce(var.lambda_zip_dir, "${path.module}/../target/lambda")
  # The registry takes JSON Schema Draft 4, not the 2020-12 schema schemars
  # writes: tideline-core renders this Draft 4 twin from the same types, and
  # a test keeps it fresh (crates/tideline-core/src/schema_draft4.rs).
  schema_file = coalesce(var.schema_file, "${path.module}/../schemas/integration-event.draft4.schema.json")

  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
}

module "key" {
  source = "./modules/key"

  name                    = var.name_prefix
  event_bus_name          = var.name_prefix
  administrator_arns      = var.kms_administrator_arns
  deletion_window_in_days = var.kms_deletion_window_days
  tags                    = local.tags
}

module "ingest" {
  source = "./modules/ingest"

  name                              = "${var.name_prefix}-ingest"
  bucket_name                       = var.lake_bucket_name
  transformer_function_arn          = module.transformer.function_arn
  kms_key_arn                       = module.key.key_arn
  buffering_size_mb                 = var.firehose_buffering_size_mb
  buffering_interval_seconds        = var.firehose_buffering_interval_seconds
  processor_buffer_size_mb          = var.firehose_processor_buffer_size_mb
  processor_buffer_interval_seconds = local.processor_buffer_interval_seconds
  transition_days                   = var.lake_transition_days
  transition_storage_class          = var.lake_transition_storage_class
  expiration_days                   = var.lake_expiration_days
  glue_database_name                = coalesce(var.lake_glue_database_name, "${replace(var.name_prefix, "-", "_")}_lake")
  event_types                       = var.lake_event_types
  projection_start_date             = var.lake_projection_start_date
  athena_bytes_scanned_cutoff       = var.athena_bytes_scanned_cutoff
  force_destroy                     = var.lake_force_destroy
  log_retention_days                = var.log_retention_days
  alarm_actions                     = local.alarm_actions
  tags                              = local.tags
}

module "queue" {
  source = "./modules/queue"

  name                       = "${var.name_prefix}-events"
  kms_key_arn                = module.key.key_arn
  consumer_timeout_seconds   = var.event_storer.timeout_seconds
  visibility_timeout_seconds = coalesce(var.queue_visibility_timeout_seconds, 6 * var.event_storer.timeout_seconds)
  message_retention_seconds  = var.queue_message_retention_seconds
  max_receive_count          = var.queue_max_receive_count
  high_throughput            = var.queue_high_throughput
  max_message_size           = var.queue_max_message_size
  alarm_actions              = local.alarm_actions
  tags                       = local.tags
}

module "store" {
  source = "./modules/store"

  table_name          = "${var.name_prefix}-events"
  kms_key_arn         = module.key.key_arn
  deletion_protection = var.table_deletion_protection
  alarm_actions       = local.alarm_actions

  legacy_sequence_index = var.legacy_sequence_index
  tags                  = local.tags
}

module "bus" {
  source = "./modules/bus"

  name                   = var.name_prefix
  event_source           = var.event_source
  archive_retention_days = var.archive_retention_days
  enable_schema_registry = var.enable_schema_registry
  schema_file            = local.schema_file
  enable_tap             = var.enable_bus_tap
  kms_key_arn            = module.key.key_arn
  log_retention_days     = var.log_retention_days
  tags                   = local.tags
}

# The optional ordered bus (decision 0013): the emitter publishes there
# instead of the classic bus, and a FIFO subscriber delivers per entity in order.
module "ordered_bus" {
  source = "./modules/ordered_bus"
  count  = var.ordered_bus ? 1 : 0

  name          = "${var.name_prefix}-ordered"
  event_source  = var.event_source
  alarm_actions = local.alarm_actions
  tags          = local.tags
}

module "stream_failures" {
  source = "./modules/dlq"

  # Lambda writes the failed batch's shard and sequence range here (not the
  # records): read them back from the stream or the table to re-emit.
  name          = "${var.name_prefix}-stream-failures"
  purpose       = "Stream batches the emitter gave up on after retries: their events were stored but not published. Re-emit them from the events table (the message names the shard and sequence range)."
  kms_key_arn   = module.key.key_arn
  alarm_actions = local.alarm_actions
  tags          = local.tags
}

module "api" {
  source = "./modules/api"

  name                   = "${var.name_prefix}-query"
  function_name          = module.query_api.function_name
  function_invoke_arn    = module.query_api.invoke_arn
  command_function_name  = module.command_api.function_name
  command_invoke_arn     = module.command_api.invoke_arn
  write_scopes           = var.api_write_scopes
  authorization          = var.api_authorization
  jwt_issuer             = var.api_jwt_issuer
  jwt_audience           = var.api_jwt_audience
  throttling_rate_limit  = var.api_throttling_rate_limit
  throttling_burst_limit = var.api_throttling_burst_limit
  # API Gateway waits as long as the function may run (at most 30 s).
  integration_timeout_ms = max(var.query_api.timeout_seconds, var.command_api.timeout_seconds) * 1000
  latency_alarm_ms       = var.api_latency_alarm_ms
  kms_key_arn            = module.key.key_arn
  log_retention_days     = var.log_retention_days
  alarm_actions          = local.alarm_actions
  tags                   = local.tags
}

module "realtime" {
  source = "./modules/realtime"
  count  = var.realtime.enabled ? 1 : 0

  name                   = var.name_prefix
  lambda_zip_dir         = local.lambda_zip_dir
  architecture           = var.lambda_architecture
  event_bus_name         = module.bus.bus_name
  event_source           = var.event_source
  events_table_name      = module.store.table_name
  events_table_arn       = module.store.table_arn
  jwks                   = var.realtime.jwks
  issuer                 = var.realtime.issuer
  relay_concurrency      = var.realtime.relay_concurrency
  http_api_id            = module.api.api_id
  http_api_execution_arn = module.api.execution_arn
  http_api_authorization = var.api_authorization
  http_api_authorizer_id = module.api.authorizer_id
  write_scopes           = var.api_write_scopes
  kms_key_arn            = module.key.key_arn
  log_retention_days     = var.log_retention_days
  alarm_actions          = local.alarm_actions
  tags                   = local.tags
}
