variable "name" {
  description = "Name of the pipeline; the key alias becomes alias/<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,200}$", var.name))
    error_message = "name may contain only letters, digits, '/', '_' and '-'."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before KMS deletes the key after `terraform destroy` (KMS allows 7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30 (the KMS limits)."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "administrator_arns" {
  description = "Principals that administer the key (policy, rotation, deletion) but cannot use it; empty means the account root, i.e. whoever IAM allows."
  type        = list(string)
  default     = []
}

variable "event_bus_name" {
  description = "Name of the bus EventBridge encrypts with the key; its rules may also write to DLQs encrypted with it."
  type        = string
}
