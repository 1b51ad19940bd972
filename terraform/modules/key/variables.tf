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
