# The whole pipeline plus the project's example consumer, event-responder,
# bound through the reusable consumer module to the "event-responder" rule
# of rules.json, the same file local mode reads.
#
#   cargo lambda build --release --arm64 --output-format zip   # at the repo root
#   terraform init && terraform apply                          # here

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { project = "tideline" })
  }
}

locals {
  # This file sits at terraform/examples/complete; the zips at <repo>/target/lambda.
  lambda_zip_dir = coalesce(var.lambda_zip_dir, "${path.module}/../../../target/lambda")
  rules_file     = coalesce(var.rules_file, "${path.module}/rules.json")
}

module "tideline" {
  source = "../.."

  name_prefix               = var.name_prefix
  lambda_zip_dir            = local.lambda_zip_dir
  alarm_email               = var.alarm_email
  table_deletion_protection = var.deletion_protection
  lake_force_destroy        = !var.deletion_protection
  log_retention_days        = var.log_retention_days
  enable_schema_registry    = var.enable_schema_registry
  enable_bus_tap            = true
  low_latency               = var.low_latency

  realtime = {
    enabled = var.realtime_jwks_file != null
    jwks    = var.realtime_jwks_file == null ? null : file(var.realtime_jwks_file)
    issuer  = var.realtime_issuer
  }
}

# The example consumer's read model: one item per entity, keyed by pk.
resource "aws_dynamodb_table" "responder_read_model" {
  name         = "${var.name_prefix}-event-responder-read-model"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.tideline.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection
}

module "event_responder" {
  source = "../../modules/consumer"

  name       = "${var.name_prefix}-event-responder"
  zip_path   = "${local.lambda_zip_dir}/event-responder/bootstrap.zip"
  rules_file = local.rules_file
  rule_name  = "event-responder"

  event_pattern_json = var.responder_event_pattern_json
  event_bus_name     = module.tideline.event_bus_name
  kms_key_arn        = module.tideline.kms_key_arn
  alarm_actions      = [module.tideline.alarm_topic_arn]

  architecture                         = module.tideline.lambda_architecture
  log_retention_days                   = module.tideline.log_retention_days
  checkpoint_table_deletion_protection = var.deletion_protection

  table_arns = [aws_dynamodb_table.responder_read_model.arn]
  # crates/event-responder/src/lib.rs: GetItem of the entity's summary, then
  # a Put of the new summary in the checkpoint's transaction.
  read_model_actions = ["dynamodb:GetItem", "dynamodb:PutItem"]

  environment = {
    TIDELINE_READ_MODEL_TABLE = aws_dynamodb_table.responder_read_model.name
  }

  optional_environment = {
    TIDELINE_GAP_POLICY = var.responder_gap_policy
    RUST_LOG            = "info"
  }
}
