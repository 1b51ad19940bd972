variable "name" {
  description = "Name of the custom event bus (TIDELINE_EVENT_BUS_NAME)."
  type        = string

  validation {
    # 40 leaves room for the "-archive" suffix within the 48-character archive name limit.
    condition     = can(regex("^[a-zA-Z0-9._-]{1,40}$", var.name))
    error_message = "name must be 1-40 characters of letters, digits, '.', '_' and '-'."
  }
}

variable "archive_retention_days" {
  description = "Days the archive keeps published events for replay; 0 keeps them forever."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_retention_days >= 0
    error_message = "archive_retention_days must be 0 (indefinite) or more."
  }
}

variable "event_source" {
  description = "The `source` the emitter puts on every event; the archive keeps only these."
  type        = string
}

variable "schema_file" {
  description = "JSON Schema Draft 4 of the integration event. If the file does not exist, no schema is registered."
  type        = string
  default     = null
}

variable "enable_schema_registry" {
  description = "Register the integration event schema in an EventBridge schema registry."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "enable_tap" {
  description = "Copy every event of the bus into a CloudWatch log group, so operators can `aws logs tail` the bus. Costs log ingestion per event."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer managed key for the bus's events and the tap's log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days the tap's log group keeps events."
  type        = number
  default     = 365
}
