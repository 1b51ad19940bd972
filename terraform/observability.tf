# Alarms notify one encrypted SNS topic. Every DLQ has a depth alarm above 0
# (in its module), every function an error and a throttle alarm, Firehose
# delivery and transformation failure alarms; the stream's iterator age is
# alarmed here because it belongs to the stream -> emitter hop.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = module.key.key_arn
  tags              = local.tags
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "alarm_topic" {
  statement {
    # Only this account's CloudWatch alarms may publish.
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:cloudwatch:${local.region}:${data.aws_caller_identity.current.account_id}:alarm:*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarm_topic.json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "stream_iterator_age" {
  alarm_name          = "${var.name_prefix}-stream-iterator-age"
  alarm_description   = "Stored events wait more than ${var.iterator_age_alarm_ms} ms to be published: the emitter is failing (rewinding) or too slow. Stream records expire after 24 h."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = module.event_emitter.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "stream_failure_delivery" {
  alarm_name          = "${var.name_prefix}-stream-failures-delivery-failed"
  alarm_description   = "Lambda could not record a stream batch the emitter gave up on in ${module.stream_failures.name}: which stored events were not published is now only in the emitter's logs."
  namespace           = "AWS/Lambda"
  metric_name         = "DestinationDeliveryFailures"
  dimensions          = { FunctionName = module.event_emitter.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_dashboard" "pipeline" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = "${var.name_prefix}-pipeline"

  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "1. Ingest: Firehose records in, transformed, delivered"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["AWS/Firehose", "IncomingRecords", "DeliveryStreamName", module.ingest.delivery_stream_name],
            ["AWS/Firehose", "ExecuteProcessing.Success", "DeliveryStreamName", module.ingest.delivery_stream_name, { stat = "Average" }],
            ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", module.ingest.delivery_stream_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "2. Queue: FIFO depth, oldest message, DLQ"
          region = local.region
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.queue.name],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", module.queue.name, { yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.queue.dlq_name],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "3. Functions: errors and throttles"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = flatten([
            for fn in [module.transformer, module.event_storer, module.event_emitter, module.query_api, module.command_api] : [
              ["AWS/Lambda", "Errors", "FunctionName", fn.function_name],
              ["AWS/Lambda", "Throttles", "FunctionName", fn.function_name],
            ]
          ])
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "4. Stream -> bus: iterator age, stream failures"
          region = local.region
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/Lambda", "IteratorAge", "FunctionName", module.event_emitter.function_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.stream_failures.name, { yAxis = "right" }],
          ]
        }
      },
    ]
  })
}
