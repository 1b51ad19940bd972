variable "table_name" {
  description = "Name of the events table (TIDELINE_TABLE_NAME)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.table_name))
    error_message = "table_name must be 3-255 characters of letters, digits, '_', '-' and '.'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key for the table's and its stream's encryption at rest."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table (set false before `terraform destroy` of a test stack)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "alarm_actions" {
  description = "ARNs notified by the table's throttling and system-error alarms."
  type        = list(string)
  default     = []
}

variable "legacy_sequence_index" {
  description = "Keep the `by-sequence` local secondary index of a table created before decision 0009. An LSI can only change with the table, so this must match the existing table; new deployments leave it false (no index, one write unit less per event)."
  type        = bool
  default     = false
}
