# The two event source mappings. Both report batch item failures, so a
# partial failure retries only what must be retried (invariant 5).

# FIFO queue -> event-storer. Lambda polls one batch per message group at a
# time, so an entity's events reach the storer in order. On a failure the
# storer reports the failed message and every later one of the batch; SQS
# redelivers exactly those, and after max_receive_count they move to the
# FIFO DLQ.
resource "aws_lambda_event_source_mapping" "queue_to_storer" {
  event_source_arn = module.queue.arn
  function_name    = module.event_storer.function_arn
  # At most 10 for a FIFO queue; FIFO sources take no batching window.
  batch_size              = var.storer_batch_size
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true

  scaling_config {
    maximum_concurrency = var.storer_maximum_concurrency
  }
}

# Table stream -> event-emitter. Records of one partition key (entity) stay
# in order even with a parallelization factor above 1. A reported failure
# rewinds to the lowest failed sequence number and replays from there, so a
# later event of an entity is never published before an earlier one.
resource "aws_lambda_event_source_mapping" "stream_to_emitter" {
  event_source_arn = module.store.stream_arn
  function_name    = module.event_emitter.function_arn
  # TRIM_HORIZON: publish every stored event still on the stream (24 h),
  # including those written before this mapping was created.
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.emitter_batch_size
  maximum_batching_window_in_seconds = local.emitter_batching_window_seconds
  parallelization_factor             = var.emitter_parallelization_factor
  bisect_batch_on_function_error     = var.emitter_bisect_batch_on_error
  # Bounded retries: -1 would let one poison record block its shard for the
  # stream's whole 24 h retention.
  maximum_retry_attempts        = var.emitter_maximum_retry_attempts
  maximum_record_age_in_seconds = var.emitter_maximum_record_age_seconds
  function_response_types       = ["ReportBatchItemFailures"]
  enabled                       = true

  # Only event items reach the emitter: inserted events, and removed ones
  # (TTL expiry -> EventExpired). Heads, de-duplication markers and rejected
  # records (and their TTL removals) are dropped by Lambda before invoking,
  # which the emitter would only skip. Filtering keeps the rewind rule
  # intact: a reported sequence number is always one of the batch's event
  # records, and the records filtered out between them carry nothing to
  # publish, so skipping them on a replay loses nothing.
  filter_criteria {
    filter {
      pattern = jsonencode({ eventName = ["INSERT"], dynamodb = { NewImage = { kind = { S = ["event"] } } } })
    }
    filter {
      pattern = jsonencode({ eventName = ["REMOVE"], dynamodb = { OldImage = { kind = { S = ["event"] } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = module.stream_failures.arn
    }
  }
}
