variable "name" {
  description = "Name of the enhanced custom event bus; also the prefix of its subscriber, queues and role."
  type        = string
}

variable "event_source" {
  description = "`source` of the integration events the emitter publishes; the subscriber's filter matches it."
  type        = string
}

variable "retention_days" {
  description = "Days the enhanced bus keeps events (StorageConfiguration.RetentionPeriodInDays)."
  type        = number
  default     = 1
}

variable "alarm_actions" {
  description = "ARNs notified when a delivery fails into the on-failure queue."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource (the CloudFormation stack propagates them to the bus and subscriber)."
  type        = map(string)
  default     = {}
}

variable "max_queue_age_seconds" {
  description = "Alarm when the oldest event in the subscriber's FIFO queue is older than this."
  type        = number
  default     = 300
}
