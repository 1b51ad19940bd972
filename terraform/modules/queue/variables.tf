variable "name" {
  description = "Base name; the queue is <name>.fifo and its dead-letter queue <name>-dlq.fifo."
  type        = string

  validation {
    # SQS caps names at 80 characters including ".fifo" and "-dlq".
    condition     = can(regex("^[a-zA-Z0-9_-]{1,71}$", var.name))
    error_message = "name must be 1-71 characters of letters, digits, '-' and '_'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key for SQS server-side encryption."
  type        = string
}

variable "consumer_timeout_seconds" {
  description = "Timeout of the function that consumes the queue (the event storer)."
  type        = number
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue. AWS asks for at least 6 times the consumer's timeout so that retries of a throttled batch do not make the message visible again while it is still being processed."
  type        = number

  validation {
    condition     = var.visibility_timeout_seconds >= 6 * var.consumer_timeout_seconds && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be at least 6 x consumer_timeout_seconds and at most 43200 (12 h, the SQS limit)."
  }
}

variable "message_retention_seconds" {
  description = "How long the queue keeps a message (60 s to 14 days)."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600."
  }
}

variable "max_receive_count" {
  description = "Receives after which a message moves to the FIFO dead-letter queue. While it is retried, later messages of the same entity wait behind it."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "high_throughput" {
  description = "FIFO high-throughput mode: de-duplication and throughput limits per message group (entity) instead of per queue."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs notified by the queue's alarms."
  type        = list(string)
  default     = []
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm when the oldest message in the queue is older than this: the storer is stuck or too slow."
  type        = number
  default     = 900
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "max_message_size" {
  description = "The queue's MaximumMessageSize in bytes. The transformer gets the same value (TIDELINE_MAX_MESSAGE_BYTES) and refuses larger records at ingest. SQS allows 1024 to 1048576; events are also bounded by DynamoDB's 400 KB item."
  type        = number
  default     = 262144

  validation {
    condition     = var.max_message_size >= 1024 && var.max_message_size <= 1048576
    error_message = "max_message_size must be between 1024 and 1048576 bytes (SQS MaximumMessageSize)."
  }
}
