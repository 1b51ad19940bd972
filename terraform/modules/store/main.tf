# The event store. The table contract is fixed by the code and checked by
# terraform/tests/test_consistency.py:
#   pk (S, hash) = entity id, sk (S, range) = the event's slot (a UTC time,
#   strictly increasing per entity, so sk order is seq order)
#   stream NEW_AND_OLD_IMAGES, TTL attribute `expires_at`
# No index (decision record 0009): history reads in sk order. Tables created
# before 0009 have the local secondary index `by-sequence` on (pk, seq); an
# LSI can only change with the table, so `legacy_sequence_index = true` keeps
# it (and keeps Terraform from replacing the table). The code no longer reads
# it; it only costs the index copy of each write.

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

  dynamic "attribute" {
    for_each = var.legacy_sequence_index ? ["seq"] : []
    content {
      name = attribute.value
      type = "N"
    }
  }

  dynamic "local_secondary_index" {
    for_each = var.legacy_sequence_index ? ["by-sequence"] : []
    content {
      name            = local_secondary_index.value
      range_key       = "seq"
      projection_type = "ALL"
    }
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
  # Adding or removing the LSI replaces the table; with deletion protection
  # on (the default) AWS refuses the delete, so a wrong
  # legacy_sequence_index fails the apply instead of losing the table.

  tags = var.tags
}

# Throttling and DynamoDB-side errors of the operations the code makes
# (tideline-aws/src/store.rs): the storer retries them, but sustained, they
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
