# ------------------------------------------------------------------ general

variable "name_prefix" {
  description = "Prefix of every resource name; lets several Tideline stacks share an account. 2-23 lowercase letters, digits and single hyphens."
  type        = string
  default     = "tideline"

  validation {
    # The longest derived name is the data lake bucket,
    # "<prefix>-ingest-lake-<12-digit account>-<region>": 40 characters
    # besides the prefix with the longest region names (14, e.g.
    # ap-southeast-4), within S3's 63. IAM role names ("<prefix>-ingest-firehose-role",
    # 64) and the bus archive ("<prefix>-archive", 48) fit with room to spare.
    condition     = can(regex("^[a-z][a-z0-9-]{0,21}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 2-23 lowercase letters, digits or single '-', starting with a letter and not ending with '-' (the data lake bucket name, with account id and region, must fit S3's 63 characters)."
  }

  validation {
    # "default" would name the bus like the account's default bus; "aws"
    # starts names AWS reserves (KMS alias/aws, EventBridge aws.*); xn--,
    # sthree- and amzn-s3-demo- start bucket names S3 refuses.
    condition = (
      var.name_prefix != "default" &&
      !startswith(var.name_prefix, "aws") &&
      !startswith(var.name_prefix, "xn--") &&
      !startswith(var.name_prefix, "sthree") &&
      !startswith(var.name_prefix, "amzn-s3-demo")
    )
    error_message = "name_prefix must not be \"default\" (the reserved bus name) nor start with \"aws\", \"xn--\", \"sthree\" or \"amzn-s3-demo\" (reserved by KMS, EventBridge or S3)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "lambda_zip_dir" {
  description = "Directory holding cargo-lambda's output (<dir>/<binary>/bootstrap.zip). Null means <repo>/target/lambda, relative to this module."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Instruction set of every function: arm64 (build with `cargo lambda build --release --arm64 --output-format zip`) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps function, Firehose and API logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter for every function (for example info or tideline=debug,info); null leaves it unset."
  type        = string
  default     = "info"
}

variable "event_source" {
  description = "The EventBridge `source` of every published event (TIDELINE_EVENT_SOURCE); consumer rules match on it."
  type        = string
  default     = "tideline"

  validation {
    # "aws." is reserved for AWS services.
    condition     = can(regex("^[a-zA-Z0-9._-]{1,256}$", var.event_source)) && !startswith(var.event_source, "aws.")
    error_message = "event_source must be 1-256 characters of letters, digits, '.', '_' and '-', and must not start with \"aws.\"."
  }
}

variable "kms_administrator_arns" {
  description = "Principals that administer the pipeline key (policy, rotation, deletion) without being able to use it; empty means the account root (IAM decides)."
  type        = list(string)
  default     = []
}

variable "kms_deletion_window_days" {
  description = "Days KMS waits before deleting the pipeline key after destroy (7-30)."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------- functions

variable "transformer" {
  description = "Settings of the transformer function, which Firehose invokes synchronously."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 120)
    reserved_concurrency = optional(number, -1)
  })
  default = {}

  validation {
    # 0 would stop the function, and with it the pipeline.
    condition     = var.transformer.reserved_concurrency == -1 || var.transformer.reserved_concurrency >= 1
    error_message = "transformer.reserved_concurrency must be -1 (unreserved) or at least 1."
  }

  validation {
    # Firehose waits at most 5 minutes for a transformation invocation.
    condition     = var.transformer.timeout_seconds >= 1 && var.transformer.timeout_seconds <= 300
    error_message = "transformer.timeout_seconds must be between 1 and 300 (Firehose's limit for a processing Lambda)."
  }
}

variable "transformer_max_concurrent_sends" {
  description = "TIDELINE_MAX_CONCURRENT_SENDS: most SendMessageBatch calls one transformer invocation has in flight; calls in flight never carry the same entity (decision 0022). Lower it to stay under a standard FIFO queue's 300 calls/s."
  type        = number
  default     = 10
  validation {
    condition     = var.transformer_max_concurrent_sends >= 1 && var.transformer_max_concurrent_sends <= 50
    error_message = "transformer_max_concurrent_sends must be between 1 and 50."
  }
}

variable "transformer_max_record_bytes" {
  description = "TIDELINE_MAX_RECORD_BYTES: largest record the transformer accepts; null keeps the code's default."
  type        = number
  default     = null
}

variable "transformer_field_map" {
  description = "TIDELINE_FIELD_MAP: mapping of producer fields to event fields, in the format the transformer reads; null keeps the code's default."
  type        = string
  default     = null
}

variable "transformer_schema_registry" {
  description = "TIDELINE_SCHEMA_REGISTRY: the schema registry file inside the transformer's zip (scripts/build-lambdas.sh packs schemas/ into it), e.g. \"schemas/registry.json\"; records whose data breaks their type's schema are refused at ingest. null: no validation."
  type        = string
  default     = null

  validation {
    condition     = var.transformer_schema_registry == null || try(!startswith(var.transformer_schema_registry, "/") && !strcontains(var.transformer_schema_registry, ".."), false)
    error_message = "transformer_schema_registry is a path relative to the zip's root (e.g. schemas/registry.json), without .."
  }
}

variable "event_storer" {
  description = "Settings of the event-storer function, which consumes the FIFO queue."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 30)
    reserved_concurrency = optional(number, -1)
  })
  default = {}

  validation {
    # Below storer_maximum_concurrency the SQS event source starts pollers
    # the function cannot run: messages are throttled back to the queue,
    # count as receives and reach the DLQ without a real failure. 0 stops it.
    condition     = var.event_storer.reserved_concurrency == -1 || var.event_storer.reserved_concurrency >= var.storer_maximum_concurrency
    error_message = "event_storer.reserved_concurrency must be -1 (unreserved) or at least storer_maximum_concurrency."
  }
}

variable "event_ttl_days" {
  description = "TIDELINE_EVENT_TTL_DAYS: days after which stored events expire through the table's TTL; null keeps the code's default."
  type        = number
  default     = null

  validation {
    condition     = var.event_ttl_days == null || try(var.event_ttl_days >= 1, false)
    error_message = "event_ttl_days must be null or at least 1."
  }
}

variable "event_emitter" {
  description = "Settings of the event-emitter function, which reads the table's stream."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 60)
    reserved_concurrency = optional(number, -1)
  })
  default = {}

  validation {
    # 0 would stop publishing; stream records expire after 24 h.
    condition     = var.event_emitter.reserved_concurrency == -1 || var.event_emitter.reserved_concurrency >= 1
    error_message = "event_emitter.reserved_concurrency must be -1 (unreserved) or at least 1 (one per shard x parallelization factor avoids throttling)."
  }
}

variable "query_api" {
  description = "Settings of the query-api function behind the HTTP API."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 10)
    reserved_concurrency = optional(number, -1)
  })
  default = {}

  validation {
    # An HTTP API integration waits at most 30 s.
    condition     = var.query_api.timeout_seconds >= 1 && var.query_api.timeout_seconds <= 30
    error_message = "query_api.timeout_seconds must be between 1 and 30 (the HTTP API integration limit)."
  }
}

variable "command_api" {
  description = "Settings of the command-api function behind the HTTP API (POST /entities/{entity_id}/events)."
  type = object({
    memory_mb            = optional(number, 256)
    timeout_seconds      = optional(number, 10)
    reserved_concurrency = optional(number, -1)
  })
  default = {}

  validation {
    # An HTTP API integration waits at most 30 s.
    condition     = var.command_api.timeout_seconds >= 1 && var.command_api.timeout_seconds <= 30
    error_message = "command_api.timeout_seconds must be between 1 and 30 (the HTTP API integration limit)."
  }
}

# ------------------------------------------------------------------- ingest

variable "firehose_buffering_size_mb" {
  description = "MiB Firehose buffers before writing a data lake object (64-128 with dynamic partitioning)."
  type        = number
  default     = 64
}

variable "firehose_buffering_interval_seconds" {
  description = "Seconds Firehose buffers before writing a data lake object (0-900)."
  type        = number
  default     = 60
}

variable "firehose_processor_buffer_size_mb" {
  description = "MiB of records per transformer invocation (0.2-0.3: the transformer's response must fit Lambda's 6 MB for the smallest records, trace context included)."
  type        = number
  default     = 0.3
}

variable "firehose_processor_buffer_interval_seconds" {
  description = "Seconds Firehose waits to fill a transformer invocation (0-900, Firehose's Lambda buffering interval hint). low_latency = true sets 0."
  type        = number
  default     = 60

  validation {
    condition     = var.firehose_processor_buffer_interval_seconds >= 0 && var.firehose_processor_buffer_interval_seconds <= 900
    error_message = "firehose_processor_buffer_interval_seconds must be between 0 and 900 (Firehose's Lambda buffering interval hint)."
  }
}

variable "low_latency" {
  description = "Deliver each event to the bus (and realtime subscribers) about a second after ingest instead of up to a minute: Firehose invokes the transformer with no buffering interval and the stream starts the emitter with no batching window (both settings become 0, whatever firehose_processor_buffer_interval_seconds and emitter_batching_window_seconds say). It costs more, smaller invocations: `tideline cost --low-latency` prices it, docs/realtime.md gives the budget."
  type        = bool
  default     = false
}

variable "lake_bucket_name" {
  description = "Name of the data lake bucket; null derives <prefix>-ingest-lake-<account>-<region>."
  type        = string
  default     = null
}

variable "lake_transition_days" {
  description = "Days after which data lake objects change storage class."
  type        = number
  default     = 30
}

variable "lake_transition_storage_class" {
  description = "Storage class data lake objects move to."
  type        = string
  default     = "STANDARD_IA"
}

variable "lake_expiration_days" {
  description = "Days after which data lake objects expire."
  type        = number
  default     = 365
}

variable "lake_glue_database_name" {
  description = "Glue database of the lake's Athena tables; null derives <prefix with - as _>_lake (tideline_lake by default), the name docs/lake.md uses."
  type        = string
  default     = null
}

variable "lake_event_types" {
  description = "Event types (path-safe, as in the lake) Athena enumerates for the events table; empty makes event_type an injected partition that every query must name."
  type        = list(string)
  default     = []
}

variable "lake_projection_start_date" {
  description = "First day (YYYY-MM-DD) the lake tables' date projection covers."
  type        = string
  default     = "2026-01-01"
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes one Athena query of the lake workgroup may scan (default 10 GiB)."
  type        = number
  default     = 10737418240
}

variable "lake_force_destroy" {
  description = "Let destroy empty the buckets (test stacks only)."
  type        = bool
  default     = false
}

# -------------------------------------------------------------------- queue

variable "rejected_ttl_days" {
  description = "TIDELINE_REJECTED_TTL_DAYS: days a rejected record (with its reason) is kept before TTL removes it; null keeps the event retention (event_ttl_days), and with neither set they are kept. Shorter keeps bad input from filling the table; longer keeps the evidence for operators."
  type        = number
  default     = null

  validation {
    condition     = var.rejected_ttl_days == null || try(var.rejected_ttl_days >= 1, false)
    error_message = "rejected_ttl_days must be at least 1, or null."
  }
}

variable "queue_max_message_size" {
  description = "The FIFO queue's MaximumMessageSize in bytes (1024-1048576); the transformer refuses larger records at ingest (TIDELINE_MAX_MESSAGE_BYTES)."
  type        = number
  default     = 262144
}

variable "queue_high_throughput" {
  description = "FIFO high-throughput mode (deduplication_scope = messageGroup, fifo_throughput_limit = perMessageGroupId)."
  type        = bool
  default     = true
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the FIFO queue; null means 6 x the storer's timeout, the minimum AWS recommends."
  type        = number
  default     = null
}

variable "queue_max_receive_count" {
  description = "Receives before a message moves to the FIFO DLQ."
  type        = number
  default     = 5
}

variable "queue_message_retention_seconds" {
  description = "How long the FIFO queue keeps a message."
  type        = number
  default     = 345600
}

variable "storer_batch_size" {
  description = "Messages per storer invocation (1-10, the FIFO event source limit)."
  type        = number
  default     = 10

  validation {
    condition     = var.storer_batch_size >= 1 && var.storer_batch_size <= 10
    error_message = "storer_batch_size must be between 1 and 10: a FIFO event source mapping takes at most 10."
  }
}

variable "storer_max_concurrent_entities" {
  description = "TIDELINE_MAX_CONCURRENT_ENTITIES: most entities of a queue batch one storer invocation appends at once; each entity's messages stay one after another (decision 0022). 10 appends every entity of a full batch at once."
  type        = number
  default     = 10
  validation {
    condition     = var.storer_max_concurrent_entities >= 1 && var.storer_max_concurrent_entities <= 10
    error_message = "storer_max_concurrent_entities must be between 1 and 10 (a FIFO batch holds at most 10 messages)."
  }
}

variable "storer_maximum_concurrency" {
  description = "Most concurrent storer invocations the SQS event source starts (2-1000). Order holds per entity at any value."
  type        = number
  default     = 10

  validation {
    condition     = var.storer_maximum_concurrency >= 2 && var.storer_maximum_concurrency <= 1000
    error_message = "storer_maximum_concurrency must be between 2 and 1000."
  }
}

# -------------------------------------------------------------------- store

variable "legacy_sequence_index" {
  description = "true for a table created before decision 0009 (it has the `by-sequence` LSI, which only changes with the table): keeps the index so Terraform does not plan a replacement. New deployments: false (docs/decisions/0009-cheaper-store.md)."
  type        = bool
  default     = false
}

variable "table_deletion_protection" {
  description = "Protect the events table from deletion."
  type        = bool
  default     = true
}

# ----------------------------------------------------------- stream → emit

variable "emitter_batch_size" {
  description = "Stream records per emitter invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.emitter_batch_size >= 1 && var.emitter_batch_size <= 10000
    error_message = "emitter_batch_size must be between 1 and 10000."
  }
}

variable "emitter_batching_window_seconds" {
  description = "Seconds the stream event source waits to fill a batch (0-300). low_latency = true sets 0."
  type        = number
  default     = 1

  validation {
    condition     = var.emitter_batching_window_seconds >= 0 && var.emitter_batching_window_seconds <= 300
    error_message = "emitter_batching_window_seconds must be between 0 and 300."
  }
}

variable "emitter_parallelization_factor" {
  description = "Concurrent batches per stream shard (1-10); records of one entity stay in order."
  type        = number
  default     = 1

  validation {
    condition     = var.emitter_parallelization_factor >= 1 && var.emitter_parallelization_factor <= 10
    error_message = "emitter_parallelization_factor must be between 1 and 10."
  }
}

variable "emitter_bisect_batch_on_error" {
  description = "Split a failing batch in two and retry each half, to isolate a poison record."
  type        = bool
  default     = true
}

variable "emitter_maximum_retry_attempts" {
  description = "Retries of a failing stream batch before it goes to the on-failure queue (0-10000). -1 (forever) is refused: one poison record would block its shard for 24 h."
  type        = number
  default     = 10

  validation {
    condition     = var.emitter_maximum_retry_attempts >= 0 && var.emitter_maximum_retry_attempts <= 10000
    error_message = "emitter_maximum_retry_attempts must be between 0 and 10000."
  }
}

variable "emitter_maximum_record_age_seconds" {
  description = "Records older than this go to the on-failure queue instead of being retried (60-604800; stream records live 24 h)."
  type        = number
  default     = 21600

  validation {
    condition     = var.emitter_maximum_record_age_seconds >= 60 && var.emitter_maximum_record_age_seconds <= 604800
    error_message = "emitter_maximum_record_age_seconds must be between 60 and 604800."
  }
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the emitter's stream iterator age exceeds this many milliseconds (events wait to be published)."
  type        = number
  default     = 300000
}

# ---------------------------------------------------------------------- bus

variable "archive_retention_days" {
  description = "Days the bus archive keeps events for replay; 0 keeps them forever."
  type        = number
  default     = 30
}

variable "bundle_max_events" {
  description = "Most consecutive events the emitter packs into one bus entry (detail.events, decision 0014); 1 = off. Rules must match bundles too: see docs/consumers.md."
  type        = number
  default     = 1
  validation {
    condition     = var.bundle_max_events >= 1 && floor(var.bundle_max_events) == var.bundle_max_events
    error_message = "bundle_max_events must be a whole number, at least 1 (1 = off)."
  }
}

variable "ordered_bus" {
  description = "Publish to an EventBridge enhanced custom event bus (EventsV2) with a FIFO subscriber, ordered per entity (EventGroupId = entity id), instead of the classic bus (decision 0013). Deployed with a CloudFormation stack; not verified against a live account (docs/ordered-bus.md)."
  type        = bool
  default     = false
}

variable "enable_bus_tap" {
  description = "Copy every published event into the log group /aws/events/<prefix> so `aws logs tail` can follow the bus (costs log ingestion per event)."
  type        = bool
  default     = false
}

variable "enable_schema_registry" {
  description = "Register the integration event schema (schemas/integration-event.draft4.schema.json, JSON Schema Draft 4) in an EventBridge schema registry (skipped if the file is missing)."
  type        = bool
  default     = false
}

variable "schema_file" {
  description = "Path of the integration event schema in JSON Schema Draft 4 (what the registry accepts); null means <repo>/schemas/integration-event.draft4.schema.json."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------- api

variable "api_authorization" {
  description = "Query API authorization: AWS_IAM (default, SigV4) or JWT."
  type        = string
  default     = "AWS_IAM"
}

variable "api_jwt_issuer" {
  description = "OIDC issuer URL when api_authorization is JWT."
  type        = string
  default     = null
}

variable "api_jwt_audience" {
  description = "Accepted JWT audiences when api_authorization is JWT."
  type        = list(string)
  default     = []
}

variable "api_write_scopes" {
  description = "With api_authorization = JWT, the OAuth scopes a token needs to append (POST /entities/{entity_id}/events); reading needs none of them. With AWS_IAM, writing is granted separately by execute-api:Invoke on the POST route's ARN."
  type        = list(string)
  default     = ["tideline/write"]

  validation {
    condition     = length(var.api_write_scopes) > 0
    error_message = "api_write_scopes needs at least one scope: without one, any valid token could append."
  }
}

variable "api_latency_alarm_ms" {
  description = "Alarm when the query API's p99 latency stays above this many milliseconds."
  type        = number
  default     = 2000
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the query API accepts."
  type        = number
  default     = 100
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the query API accepts."
  type        = number
  default     = 200
}

# ----------------------------------------------------------------- alarming

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail); null subscribes nobody."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", coalesce(var.alarm_email, "-")))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "alarm_actions" {
  description = "Further ARNs (SNS topics, incident tools) every alarm notifies, besides the stack's alarm topic."
  type        = list(string)
  default     = []
}

variable "create_dashboard" {
  description = "Create a CloudWatch dashboard of the pipeline, hop by hop."
  type        = bool
  default     = true
}

variable "realtime" {
  description = "Realtime fan-out to WebSocket clients (modules/realtime, docs/realtime.md): off by default. jwks is the identity provider's JSON Web Key Set as text; issuer the tokens' required iss; relay_concurrency the relay's posts in flight (null: the code's default)."
  type = object({
    enabled           = optional(bool, false)
    jwks              = optional(string)
    issuer            = optional(string)
    relay_concurrency = optional(number)
  })
  default = {}

  validation {
    condition     = !var.realtime.enabled || var.realtime.jwks != null
    error_message = "realtime.jwks is required when realtime is enabled: the authorizer checks tokens against it."
  }
}
