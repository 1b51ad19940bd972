variable "name" {
  description = "Function name (also names its role and its log group /aws/lambda/<name>)."
  type        = string

  validation {
    # The role name is "<name>-role" and IAM caps role names at 64 characters.
    condition     = can(regex("^[a-zA-Z0-9_-]{1,59}$", var.name))
    error_message = "name must be 1-59 characters of letters, digits, '-' and '_'."
  }
}

variable "description" {
  description = "What the function does, shown in the Lambda console."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Path of the zip written by `cargo lambda build --release --output-format zip`: <lambda_zip_dir>/<binary>/bootstrap.zip."
  type        = string

  validation {
    condition     = can(regex("/bootstrap\\.zip$", var.zip_path))
    error_message = "zip_path must name a cargo-lambda artefact ending in /bootstrap.zip."
  }
}

variable "architecture" {
  description = "Instruction set the zip was built for: arm64 (cargo lambda build --arm64, about 20% cheaper per GB-s) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "architecture_file" {
  description = "File holding the architecture the zip was built for (arm64 or x86_64), written by scripts/build-lambdas.sh; null means `architecture` beside the zip. The plan fails unless it equals `architecture`."
  type        = string
  default     = null
}

variable "memory_mb" {
  description = "Memory in MB; Lambda allocates CPU in proportion."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240 (the Lambda limits)."
  }
}

variable "timeout_seconds" {
  description = "Function timeout in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 1 and 900 (the Lambda limit)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 reserves none (new accounts with a concurrency quota of 10 cannot reserve any), 0 stops the function."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1
    error_message = "reserved_concurrency must be -1 (unreserved) or more."
  }
}

variable "environment" {
  description = "Environment variables that are always set. Keys must come from crates/tideline-lambdas/env-contract.json (the consistency test checks it)."
  type        = map(string)
  default     = {}
}

variable "optional_environment" {
  description = "Optional environment variables; entries whose value is null are left unset so the code's default applies."
  type        = map(string)
  default     = {}
}

variable "policy_statements" {
  description = "The IAM statements this function needs beyond logging and tracing. Actions must be explicit: no wildcards."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = []

  validation {
    condition     = alltrue(flatten([for s in var.policy_statements : [for a in s.actions : !strcontains(a, "*")]]))
    error_message = "policy_statements must not contain wildcard actions."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key that encrypts the environment variables and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the function's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "dead_letter_target_arn" {
  description = "SQS queue for failed asynchronous invocations (EventBridge targets). Leave null for functions invoked synchronously or by an event source mapping, where Lambda never uses it."
  type        = string
  default     = null
}

variable "alarm_actions" {
  description = "ARNs notified when the error or throttle alarm fires."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
