variable "name" {
  description = "Queue name (standard queue; Lambda on-failure destinations and EventBridge target DLQs cannot be FIFO)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,80}$", var.name))
    error_message = "name must be 1-80 characters of letters, digits, '-' and '_' (the SQS limit)."
  }
}

variable "purpose" {
  description = "One sentence saying what lands here and what an operator should do; it becomes the alarm description."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key for SQS server-side encryption."
  type        = string
}

variable "eventbridge_rule_arns" {
  description = "EventBridge rules allowed to send undeliverable events here (empty: no queue policy beyond TLS-only)."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "ARNs notified when a message lands in the queue."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
