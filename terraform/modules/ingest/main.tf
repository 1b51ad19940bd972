# Ingest: producers PutRecordBatch into a DirectPut Firehose stream. Firehose
# cannot deliver to SQS, so its processing step invokes the transformer, which
# validates each record, sends valid events to the FIFO queue and returns the
# records to Firehose: `Ok` ones land in the data lake partitioned by event
# type and date, `ProcessingFailed` ones under processing-failed/ with their
# reason (invariant 1: every record is accounted for).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id  = data.aws_caller_identity.current.account_id
  region      = data.aws_region.current.name
  bucket_name = coalesce(var.bucket_name, "${var.name}-lake-${local.account_id}-${local.region}")
  # The one lake layout (crates/tideline-core/src/lake_layout.rs), which
  # local mode writes too: partition keys returned by the transformer in
  # metadata.partitionKeys (already path-safe), and Firehose's error output
  # type and arrival day for refused records.
  data_prefix  = "events/event_type=!{partitionKeyFromLambda:event_type}/date=!{partitionKeyFromLambda:date}/"
  error_prefix = "processing-failed/error_type=!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/"
}

# ---------------------------------------------------------------- data lake

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a per-deployment disaster-recovery choice; the lake is a copy of what the events table already keeps with point-in-time recovery.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags

  lifecycle {
    precondition {
      # Checked with the real account id and region, which name_prefix's
      # validation can only assume.
      condition     = length(local.bucket_name) >= 3 && length(local.bucket_name) <= 63 && can(regex("^[a-z0-9][a-z0-9.-]*[a-z0-9]$", local.bucket_name))
      error_message = "The data lake bucket name \"${local.bucket_name}\" (${length(local.bucket_name)} characters) is not a valid S3 bucket name of at most 63 characters: shorten name_prefix or set lake_bucket_name."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket instead of per object: far fewer KMS calls for
    # Firehose's many objects.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "tier-then-expire"
    status = "Enabled"
    filter {}

    transition {
      days          = var.transition_days
      storage_class = var.transition_storage_class
    }

    expiration {
      days = var.expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "s3/${local.bucket_name}/"

  # S3 checks at PutBucketLogging that the target bucket lets the logging
  # service write (InvalidTargetBucketForLogging otherwise): the policy and
  # the ownership setting must exist first, or the first apply fails.
  depends_on = [aws_s3_bucket_policy.access_logs, aws_s3_bucket_ownership_controls.access_logs]
}

resource "aws_s3_bucket_notification" "lake" {
  # New objects (including processing-failed/) are announced on the default
  # event bus, so a rule can alert on rejected records or start a crawler.
  bucket      = aws_s3_bucket.lake.id
  eventbridge = true
}

data "aws_iam_policy_document" "lake" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOldTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake.json
  # A bucket policy is refused while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

# ------------------------------------------------------ access log bucket

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This bucket is the access-log target; logging it to itself would log its own log writes.
  #checkov:skip=CKV_AWS_144:Access logs are audit data for this region; replicating them is a per-deployment choice.
  #checkov:skip=CKV_AWS_145:S3 server access logging can only deliver to a bucket encrypted with SSE-S3, not SSE-KMS (S3 user guide, "Enabling server access logging").
  #checkov:skip=CKV2_AWS_62:Nothing consumes per-object events for access logs; notifications would only add noise.
  bucket        = "${substr(local.bucket_name, 0, 58)}-logs"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.access_log_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "S3ServerAccessLogsFromLake"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/s3/${local.bucket_name}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.lake.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

# ------------------------------------------------------------- Firehose

locals {
  # Firehose's defaults for a Lambda processor (firehose/latest/APIReference
  # ProcessorParameter); see the processor below for why they matter.
  processor_parameter_defaults = {
    NumberOfRetries         = "3"
    BufferSizeInMBs         = "1"
    BufferIntervalInSeconds = "60"
  }
  processor_parameters = {
    NumberOfRetries         = "3"
    BufferSizeInMBs         = tostring(var.processor_buffer_size_mb)
    BufferIntervalInSeconds = tostring(var.processor_buffer_interval_seconds)
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "delivery" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    sid     = "FirehoseAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name}-firehose-role"
  description        = "Lets ${var.name} invoke the transformer and write to the data lake."
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid = "WriteDataLake"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:PutObject",
    ]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
  }

  statement {
    sid       = "InvokeTransformer"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [var.transformer_function_arn, "${var.transformer_function_arn}:*"]
  }

  statement {
    sid       = "EncryptDataLakeObjects"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    }
  }

  statement {
    sid       = "WriteDeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:${aws_cloudwatch_log_stream.delivery.name}"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.name}-firehose-least-privilege"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = var.name
  destination = "extended_s3"

  # DirectPut: producers call PutRecordBatch (500 records / 4 MiB per call).
  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.lake.arn
    prefix              = local.data_prefix
    error_output_prefix = local.error_prefix
    buffering_size      = var.buffering_size_mb
    buffering_interval  = var.buffering_interval_seconds
    # GZIP JSON Lines (the transformer appends the newline to every record):
    # Athena and DuckDB read it as is, `tideline reingest` unzips it, and it
    # scans (and is billed per byte scanned) several times smaller.
    # Objects are encrypted by the bucket's default SSE-KMS.
    compression_format = "GZIP"
    kms_key_arn        = var.kms_key_arn

    dynamic_partitioning_configuration {
      enabled        = true
      retry_duration = 300
    }

    processing_configuration {
      enabled = true

      processors {
        type = "Lambda"

        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = "${var.transformer_function_arn}:$LATEST"
        }

        # Only parameters that differ from Firehose's defaults for a Lambda
        # processor (NumberOfRetries 3, BufferSizeInMBs 1,
        # BufferIntervalInSeconds 60). The provider drops default-valued
        # parameters when it reads the stream back, so setting one would show
        # a change on every plan after apply. With the default of 3 retries,
        # records that still fail go to the processing-failed/ prefix.
        dynamic "parameters" {
          for_each = {
            for name, value in local.processor_parameters : name => value
            if value != local.processor_parameter_defaults[name]
          }
          content {
            parameter_name  = parameters.key
            parameter_value = parameters.value
          }
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.delivery.name
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.firehose, aws_s3_bucket_policy.lake]
}

# --------------------------------------------------------------- alarms

resource "aws_cloudwatch_metric_alarm" "delivery_failed" {
  alarm_name          = "${var.name}-s3-delivery-failed"
  alarm_description   = "Firehose could not write to the data lake; it retries for 24 h, then the data is lost."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.Success"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.this.name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "processing_failed" {
  alarm_name          = "${var.name}-transform-failed"
  alarm_description   = "A transformer invocation failed; after 3 retries its records go to processing-failed/ in the data lake."
  namespace           = "AWS/Firehose"
  metric_name         = "ExecuteProcessing.Success"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.this.name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "data_freshness" {
  alarm_name          = "${var.name}-data-freshness"
  alarm_description   = "Records have waited more than ${var.freshness_alarm_seconds} s in Firehose: delivery or the transformer is falling behind."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.DataFreshness"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.this.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.freshness_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttled_records" {
  alarm_name          = "${var.name}-throttled-records"
  alarm_description   = "Producers were throttled by the delivery stream's quota: they must retry the throttled records (FailedPutCount), or ask AWS to raise the stream's limits."
  namespace           = "AWS/Firehose"
  metric_name         = "ThrottledRecords"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.this.name }
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

resource "aws_cloudwatch_metric_alarm" "partition_count_exceeded" {
  alarm_name          = "${var.name}-partition-count-exceeded"
  alarm_description   = "More active dynamic partitions (event_type x date) than the stream's quota: Firehose sends the excess to processing-failed/. Reduce event types or ask AWS to raise the active partition limit."
  namespace           = "AWS/Firehose"
  metric_name         = "PartitionCountExceeded"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.this.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
