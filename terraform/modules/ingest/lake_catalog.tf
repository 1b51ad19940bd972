# The lake, queryable: a Glue database with a table per prefix of the one
# lake layout (events/, processing-failed/), both with partition projection,
# so new partitions are queryable at once without a crawler or MSCK REPAIR;
# and an Athena workgroup that enforces encrypted results and a cap on the
# bytes one query scans. docs/lake.md has the queries.

locals {
  glue_database = coalesce(var.glue_database_name, "${replace(var.name, "-", "_")}_lake")
  lake_s3       = "s3://${aws_s3_bucket.lake.id}"

  # Firehose's error output types for an S3 destination.
  error_types = ["processing-failed", "partitioning-failed", "format-conversion-failed"]

  # event_type: an enum when the types are listed, else injected (queries
  # must then name the types they read).
  event_type_projection = length(var.event_types) > 0 ? {
    "projection.event_type.type"   = "enum"
    "projection.event_type.values" = join(",", var.event_types)
    } : {
    "projection.event_type.type" = "injected"
  }

  date_projection = {
    "projection.date.type"          = "date"
    "projection.date.format"        = "yyyy-MM-dd"
    "projection.date.range"         = "${var.projection_start_date},NOW"
    "projection.date.interval"      = "1"
    "projection.date.interval.unit" = "DAYS"
  }
}

resource "aws_glue_catalog_database" "lake" {
  name        = local.glue_database
  description = "Tideline data lake of ${var.name}: events and processing-failed records (docs/lake.md)."
  tags        = var.tags
}

resource "aws_glue_catalog_table" "events" {
  name          = "events"
  database_name = aws_glue_catalog_database.lake.name
  description   = "Accepted records, one JSON line each: events/event_type=<type>/date=<day it occurred>/."
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      "classification"            = "json"
      "compressionType"           = "gzip"
      "projection.enabled"        = "true"
      "storage.location.template" = "${local.lake_s3}/events/event_type=$${event_type}/date=$${date}/"
    },
    local.event_type_projection,
    local.date_projection,
  )

  partition_keys {
    name = "event_type"
    type = "string"
  }

  partition_keys {
    name = "date"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_s3}/events/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters            = { "ignore.malformed.json" = "true" }
    }

    # The NormalizedRecord's JSON fields (crates/tideline-core/src/ingest.rs).
    dynamic "columns" {
      for_each = [
        ["id", "string"],
        ["entity_id", "string"],
        ["type", "string"],
        ["data", "string"],
        ["occurred_at", "string"],
        ["received_at", "string"],
        ["correlation_id", "string"],
        ["test", "boolean"],
      ]
      content {
        name = columns.value[0]
        type = columns.value[1]
      }
    }
  }
}

resource "aws_glue_catalog_table" "processing_failed" {
  name          = "processing_failed"
  database_name = aws_glue_catalog_database.lake.name
  description   = "Records Firehose could not process (refused by the transformer, or not partitionable): processing-failed/error_type=<type>/date=<day it arrived>/."
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      "classification"               = "json"
      "compressionType"              = "gzip"
      "projection.enabled"           = "true"
      "projection.error_type.type"   = "enum"
      "projection.error_type.values" = join(",", local.error_types)
      "storage.location.template"    = "${local.lake_s3}/processing-failed/error_type=$${error_type}/date=$${date}/"
    },
    local.date_projection,
  )

  partition_keys {
    name = "error_type"
    type = "string"
  }

  partition_keys {
    name = "date"
    type = "string"
  }

  storage_descriptor {
    location      = "${local.lake_s3}/processing-failed/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters            = { "ignore.malformed.json" = "true" }
    }

    # What Firehose writes for a failed record.
    dynamic "columns" {
      for_each = [
        ["attemptsMade", "bigint"],
        ["arrivalTimestamp", "bigint"],
        ["errorCode", "string"],
        ["errorMessage", "string"],
        ["attemptEndingTimestamp", "bigint"],
        ["rawData", "string"],
        ["lambdaArn", "string"],
        ["recordId", "string"],
      ]
      content {
        name = columns.value[0]
        type = columns.value[1]
      }
    }
  }
}

resource "aws_athena_workgroup" "lake" {
  name          = "${var.name}-lake"
  description   = "Queries over the Tideline data lake of ${var.name}: encrypted results, capped scans."
  state         = "ENABLED"
  force_destroy = var.force_destroy

  configuration {
    # Users cannot override the encryption or the scan cap per query.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    result_configuration {
      output_location = "${local.lake_s3}/athena-results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }

  tags = var.tags
}
