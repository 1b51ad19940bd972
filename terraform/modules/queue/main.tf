# The FIFO queue fixes per-entity order: the transformer sends each event with
# MessageGroupId = entity id and MessageDeduplicationId derived from (entity,
# event id), so SQS delivers an entity's events in order, one batch per entity
# in flight, and drops a repeat of the same event of the same entity sent
# within 5 minutes, whatever the deduplication scope.

locals {
  deduplication_scope   = var.high_throughput ? "messageGroup" : "queue"
  fifo_throughput_limit = var.high_throughput ? "perMessageGroupId" : "perQueue"
}

resource "aws_sqs_queue" "dlq" {
  # A FIFO queue's dead-letter queue must be FIFO too; it keeps the group
  # order of what it receives.
  name                              = "${var.name}-dlq.fifo"
  fifo_queue                        = true
  content_based_deduplication       = false
  deduplication_scope               = local.deduplication_scope
  fifo_throughput_limit             = local.fifo_throughput_limit
  message_retention_seconds         = 1209600 # the SQS maximum, longer than the source queue keeps anything
  max_message_size                  = var.max_message_size
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags
}

resource "aws_sqs_queue" "this" {
  name       = "${var.name}.fifo"
  fifo_queue = true
  # The de-duplication id is derived from (entity, event id) by the
  # transformer (invariant 2), never a hash of the body, so two events with
  # equal bodies stay two.
  content_based_deduplication = false
  # Stated, not left to the provider's default: the transformer refuses at
  # ingest any record over this (TIDELINE_MAX_MESSAGE_BYTES, the same value).
  max_message_size                  = var.max_message_size
  deduplication_scope               = local.deduplication_scope
  fifo_throughput_limit             = local.fifo_throughput_limit
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    queue = aws_sqs_queue.this.arn
    dlq   = aws_sqs_queue.dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:PurgeQueue"]
    resources = [each.value]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "queue" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.tls_only["queue"].json
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.tls_only["dlq"].json
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Events the storer could not store after ${var.max_receive_count} receives. Later events of the same entity are stored after them only once redriven: inspect, fix, then redrive to ${aws_sqs_queue.this.name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name          = "${var.name}-oldest-message-age"
  alarm_description   = "The oldest message in ${aws_sqs_queue.this.name} is older than ${var.oldest_message_alarm_seconds} s: the storer is failing or cannot keep up."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.this.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.oldest_message_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
