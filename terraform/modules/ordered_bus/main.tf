# The optional ordered bus (decision 0013): EventBridge's enhanced custom
# event bus (the AWS::EventsV2 service) with one FIFO subscriber that writes
# to an SQS FIFO queue. The bus delivers to FIFO subscribers in publish order
# within SystemMetadata.EventGroupId, which the emitter sets to the entity id
# (AWS-CONTRACTS.md, Enhanced custom event bus).
#
# hashicorp/aws 5.100 has no resource for EventsV2, so the bus and the
# subscriber are a CloudFormation stack. The resource type names
# (AWS::EventsV2::EventBus, AWS::EventsV2::Subscriber) and their property
# names are taken from the EventsV2 API shapes in aws-sdk-eventbridgev2 1.7.0
# (CreateEventBus, CreateSubscriber); they were NOT checked against a
# CloudFormation resource specification or a live deploy (docs/ordered-bus.md).

data "aws_caller_identity" "current" {}

locals {
  subscriber_name = "${var.name}-fifo"
}

# What the subscriber delivers: a FIFO queue, grouped by entity so a consumer
# (a Lambda event source mapping) keeps each entity's order and still runs
# entities in parallel.
resource "aws_sqs_queue" "subscriber" {
  name                        = "${var.name}-ordered.fifo"
  fifo_queue                  = true
  content_based_deduplication = true
  # Per-entity groups: throughput scales with the number of entities.
  deduplication_scope   = "messageGroup"
  fifo_throughput_limit = "perMessageGroupId"
  # An AWS owned key: the subscriber's role writes here, and the pipeline
  # key's policy admits only the classic bus's services.
  sqs_managed_sse_enabled = true
  tags                    = var.tags
}

# Where the bus sends an event it could not deliver after its retry policy.
resource "aws_sqs_queue" "delivery_failures" {
  name                      = "${var.name}-ordered-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "EventBridgeInvokesTheSubscriber"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "subscriber" {
  name               = "${var.name}-ordered-subscriber"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "subscriber" {
  statement {
    # SQS SendMessageBatch is authorized by sqs:SendMessage.
    sid       = "DeliverToTheFifoQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.subscriber.arn]
  }
  statement {
    sid       = "SendFailedDeliveries"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.delivery_failures.arn]
  }
}

resource "aws_iam_role_policy" "subscriber" {
  name   = "deliver"
  role   = aws_iam_role.subscriber.id
  policy = data.aws_iam_policy_document.subscriber.json
}

resource "aws_cloudformation_stack" "this" {
  #checkov:skip=CKV_AWS_124:The stack exists only because the provider has no EventsV2 resource; Terraform drives it and reports its failures at apply, and runtime delivery failures are alarmed on the failure queue.
  name = "${var.name}-ordered-bus"
  tags = var.tags

  template_body = jsonencode({
    AWSTemplateFormatVersion = "2010-09-09"
    Description              = "Tideline ordered bus: EventsV2 enhanced custom event bus and its FIFO subscriber."
    Resources = {
      Bus = {
        Type = "AWS::EventsV2::EventBus"
        Properties = {
          Name                 = var.name
          Description          = "Tideline integration events from ${var.event_source}, ordered per entity (EventGroupId = entity id)."
          StorageConfiguration = { RetentionPeriodInDays = var.retention_days }
        }
      }
      FifoSubscriber = {
        Type = "AWS::EventsV2::Subscriber"
        Properties = {
          Name        = local.subscriber_name
          EventBusArn = { "Fn::GetAtt" = ["Bus", "Arn"] }
          Description = "Delivers in publish order per entity to ${aws_sqs_queue.subscriber.name}."
          Type        = "FIFO"
          FilterConfiguration = {
            Filters = [{
              Pattern = jsonencode({ source = [var.event_source] })
              Scope   = "METADATA"
            }]
          }
          InvokeConfiguration = {
            RoleArn   = aws_iam_role.subscriber.arn
            TargetArn = aws_sqs_queue.subscriber.arn
            SqsParameters = {
              # One SQS group per entity, from the event's own metadata
              # (JSONata over the event, as the API documents for SqsParameters).
              MessageGroupId = "{% $events.Data.metadata.entity_id %}"
            }
          }
          OnFailureConfiguration = { Arn = aws_sqs_queue.delivery_failures.arn }
        }
      }
    }
    Outputs = {
      BusArn        = { Value = { "Fn::GetAtt" = ["Bus", "Arn"] } }
      SubscriberArn = { Value = { "Fn::GetAtt" = ["FifoSubscriber", "Arn"] } }
    }
  })

  depends_on = [aws_iam_role_policy.subscriber]
}

resource "aws_cloudwatch_metric_alarm" "delivery_failures" {
  alarm_name          = "${var.name}-ordered-delivery-failures"
  alarm_description   = "The ordered bus could not deliver an event to its FIFO subscriber; it is in ${aws_sqs_queue.delivery_failures.name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.delivery_failures.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

# The subscriber's queue is a delivery queue, not a dead letter: alarm when
# its consumer falls behind rather than on depth.
resource "aws_cloudwatch_metric_alarm" "subscriber_age" {
  alarm_name          = "${var.name}-ordered-queue-age"
  alarm_description   = "Events wait in ${aws_sqs_queue.subscriber.name} longer than ${var.max_queue_age_seconds} s: its consumer is behind or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.subscriber.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.max_queue_age_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
