variable "name" {
  description = "Name of the Firehose delivery stream; also prefixes the bucket names."
  type        = string
}

variable "bucket_name" {
  description = "Name of the data lake bucket; null derives <name>-lake-<account>-<region>."
  type        = string
  default     = null
}

variable "transformer_function_arn" {
  description = "Unqualified ARN of the transformer Lambda that Firehose invokes."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key for the bucket, the delivery stream and the log group."
  type        = string
}

variable "buffering_size_mb" {
  description = "Firehose buffers this many MiB before writing an S3 object. Dynamic partitioning needs at least 64."
  type        = number
  default     = 64

  validation {
    condition     = var.buffering_size_mb >= 64 && var.buffering_size_mb <= 128
    error_message = "buffering_size_mb must be between 64 (the minimum with dynamic partitioning) and 128."
  }
}

variable "buffering_interval_seconds" {
  description = "Firehose writes an S3 object at least this often (0-900 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.buffering_interval_seconds >= 0 && var.buffering_interval_seconds <= 900
    error_message = "buffering_interval_seconds must be between 0 and 900."
  }
}

variable "processor_buffer_size_mb" {
  description = "MiB of records Firehose sends per transformer invocation. Firehose allows 0.2-3, but the transformer's response must fit Lambda's 6 MB: the smallest valid records grow about 12x once normalised, base64'd and framed, so 0.3 is the most that answers every record Ok (each normalised record carries its 55-character trace context) (crates/tideline-lambdas/tests/response_budget.rs proves it at the worst case; beyond it records are refused to processing-failed/ before they are enqueued)."
  type        = number
  default     = 0.3

  validation {
    condition     = var.processor_buffer_size_mb >= 0.2 && var.processor_buffer_size_mb <= 0.3
    error_message = "processor_buffer_size_mb must be between 0.2 and 0.3: a larger buffer of small records would answer with more than Lambda's 6 MB response limit."
  }
}

variable "processor_buffer_interval_seconds" {
  description = "Seconds Firehose waits to fill a transformer invocation (0-900: Firehose's Lambda buffering interval hint; 0 for the lowest latency)."
  type        = number
  default     = 60

  validation {
    condition     = var.processor_buffer_interval_seconds >= 0 && var.processor_buffer_interval_seconds <= 900
    error_message = "processor_buffer_interval_seconds must be between 0 and 900."
  }
}

variable "transition_days" {
  description = "Days after which data lake objects move to transition_storage_class."
  type        = number
  default     = 30

  validation {
    condition     = var.transition_days >= 30
    error_message = "transition_days must be at least 30 (S3 minimum before STANDARD_IA)."
  }
}

variable "transition_storage_class" {
  description = "Storage class objects move to after transition_days."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.transition_storage_class)
    error_message = "transition_storage_class must be STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER or DEEP_ARCHIVE."
  }
}

variable "expiration_days" {
  description = "Days after which data lake objects expire. Must be later than transition_days."
  type        = number
  default     = 365

  validation {
    condition     = var.expiration_days > var.transition_days
    error_message = "expiration_days must be greater than transition_days."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days S3 keeps an overwritten or deleted object version."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  description = "Days the bucket keeps S3 server access logs."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (test stacks only)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days to keep the Firehose error log."
  type        = number
  default     = 365
}

variable "freshness_alarm_seconds" {
  description = "Alarm when the oldest record in Firehose is older than this (not yet in S3)."
  type        = number
  default     = 900
}

variable "alarm_actions" {
  description = "ARNs notified by the delivery failure alarms."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "glue_database_name" {
  description = "Glue database of the lake tables; null derives <name with - as _>_lake."
  type        = string
  default     = null
}

variable "event_types" {
  description = "Event types Athena enumerates for the events table's event_type partition (path-safe values, as in the lake). Empty: the partition is injected and every query must name its types."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.event_types : can(regex("^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", t))])
    error_message = "event_types must be path-safe partition values (letters, digits, '.', '_', '-'; see lake_layout::safe_partition_value)."
  }
}

variable "projection_start_date" {
  description = "First day (YYYY-MM-DD) Athena's date projection covers."
  type        = string
  default     = "2026-01-01"

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.projection_start_date))
    error_message = "projection_start_date must be YYYY-MM-DD."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Bytes one Athena query in the lake workgroup may scan before it is cancelled (at least 10 MB)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10485760 (10 MB, Athena's minimum)."
  }
}
