# The event store. The table contract is fixed by the code and checked by
# terraform/tests/test_consistency.py:
#   pk (S, hash) = entity id, sk (S, range) = event key
#   seq (N) with the local secondary index `by-sequence` on (pk, seq), ALL
#   stream NEW_AND_OLD_IMAGES, TTL attribute `expires_at`
# An LSI shares the item collection of its partition key, so an entity's
# events read back in `seq` order with strongly consistent reads; it can only
# be created with the table, which is why it lives here and not in a later
# change.

resource "aws_dynamodb_table" "events" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "seq"
    type = "N"
  }

  local_secondary_index {
    name            = "by-sequence"
    range_key       = "seq"
    projection_type = "ALL"
  }

  # The emitter reads this stream. DynamoDB Streams keeps each item change
  # once, in order per partition key (entity), for 24 hours.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  # Expired events are removed by DynamoDB; the REMOVE record on the stream
  # (principal dynamodb.amazonaws.com) becomes an EventExpired event.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# Throttling and DynamoDB-side errors of the operations the code makes
# (tideline-aws/src/dynamo.rs): the storer retries them, but sustained, they
# back the FIFO queue up.
resource "aws_cloudwatch_metric_alarm" "throttled" {
  alarm_name          = "${var.table_name}-throttled"
  alarm_description   = "Reads or writes on ${var.table_name} were throttled (a hot entity near 1,000 WCU/s, or the account's on-demand limits)."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "throttled"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { reads = "ReadThrottleEvents", writes = "WriteThrottleEvents" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = metric_query.value
        dimensions  = { TableName = aws_dynamodb_table.events.name }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "system_errors" {
  alarm_name          = "${var.table_name}-system-errors"
  alarm_description   = "DynamoDB returned HTTP 500 errors on ${var.table_name}; the callers retry, but sustained errors stall the pipeline."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "errors"
    expression  = "SUM([${join(", ", [for op in local.operations : lower(op)])}])"
    label       = "System errors"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.operations
    content {
      id = lower(metric_query.value)
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "SystemErrors"
        dimensions  = { TableName = aws_dynamodb_table.events.name, Operation = metric_query.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

locals {
  # Every operation the code makes on the table.
  operations = ["GetItem", "PutItem", "TransactWriteItems", "Query"]
}
