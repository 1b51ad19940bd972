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
