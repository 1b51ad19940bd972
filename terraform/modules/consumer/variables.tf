variable "name" {
  description = "Consumer name (TIDELINE_CONSUMER_NAME); names the function, its checkpoint table, rule and DLQ."
  type        = string

  validation {
    # The function module caps names at 59 characters; "-dlq" must fit the 64-character rule name limit.
    condition     = can(regex("^[a-zA-Z0-9_-]{1,48}$", var.name))
    error_message = "name must be 1-48 characters of letters, digits, '-' and '_'."
  }
}

variable "zip_path" {
  description = "The consumer's cargo-lambda zip: <lambda_zip_dir>/<binary>/bootstrap.zip."
  type        = string
}

variable "rules_file" {
  description = "Path of the rules file local mode reads: a JSON array of {name, event_pattern, target}. One file routes both locally and on AWS."
  type        = string

  validation {
    condition     = fileexists(var.rules_file)
    error_message = "rules_file does not exist."
  }

  validation {
    # A JSON array decodes to a tuple whose elements may have different
    # shapes (rules with different targets), so tolist() cannot unify them and
    # must not be the test: check for an array, then that every element is a
    # rule with a name.
    condition = (
      can(regex("^\\s*\\[", file(var.rules_file))) &&
      can(jsondecode(file(var.rules_file))) &&
      alltrue([for rule in try(jsondecode(file(var.rules_file)), [{}]) : can(tostring(rule.name))])
    )
    error_message = "rules_file must hold a JSON array of rules, each an object with a \"name\"."
  }
}

variable "rule_name" {
  description = "Name of the rule in rules_file whose event_pattern this consumer subscribes with."
  type        = string
}

variable "event_pattern_json" {
  description = "The EventBridge pattern printed by the consumer's handler registry (`<consumer binary> --print-event-pattern`): exactly the event types it has handlers for. When set, the rule uses it instead of the rules file's event_pattern, so the rule and the handlers cannot drift apart. null keeps the rules file's pattern."
  type        = string
  default     = null

  validation {
    # What HandlerRegistry::event_pattern prints: a source list and a
    # non-empty list of detail types (EventBridge DetailType: 1-128 characters).
    condition = var.event_pattern_json == null || (
      can(jsondecode(var.event_pattern_json)["source"][0]) &&
      can(length(jsondecode(var.event_pattern_json)["detail-type"]) > 0) &&
      alltrue([for t in try(jsondecode(var.event_pattern_json)["detail-type"], [""]) : can(regex("^.{1,128}$", t))])
    )
    error_message = "event_pattern_json must be the registry's pattern: {\"source\": [...], \"detail-type\": [one or more event types of 1-128 characters]}."
  }
}

variable "event_bus_name" {
  description = "Name of the bus the rule listens on."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key for the checkpoint table, the DLQ, the logs and the environment."
  type        = string
}

variable "environment" {
  description = "Extra always-set environment variables (for example TIDELINE_READ_MODEL_TABLE). TIDELINE_CONSUMER_NAME and TIDELINE_CHECKPOINT_TABLE are set by the module."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.environment), ["TIDELINE_CONSUMER_NAME", "TIDELINE_CHECKPOINT_TABLE"])) == 0
    error_message = "TIDELINE_CONSUMER_NAME and TIDELINE_CHECKPOINT_TABLE are set by the module; do not pass them."
  }
}

variable "optional_environment" {
  description = "Optional environment variables; null values are left unset."
  type        = map(string)
  default     = {}
}

variable "table_arns" {
  description = "ARNs of the consumer's own tables (read models) it may read and write, besides its checkpoint table."
  type        = list(string)
  default     = []
}

variable "read_model_actions" {
  description = "DynamoDB actions on table_arns: what the handler reads (GetItem, Query) and the item kinds it returns for the transaction (PutItem, UpdateItem, DeleteItem, ConditionCheckItem)."
  type        = list(string)
  default     = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]

  validation {
    condition     = length(var.read_model_actions) > 0 && alltrue([for a in var.read_model_actions : startswith(a, "dynamodb:") && !strcontains(a, "*")])
    error_message = "read_model_actions must be explicit dynamodb: actions, without wildcards."
  }
}

variable "policy_statements" {
  description = "Further IAM statements the consumer needs (explicit actions only)."
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
}

variable "architecture" {
  description = "arm64 or x86_64, as built by cargo lambda."
  type        = string
  default     = "arm64"
}

variable "memory_mb" {
  description = "Memory of the consumer function in MB."
  type        = number
  default     = 256
}

variable "timeout_seconds" {
  description = "Timeout of the consumer function in seconds."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of the consumer function; -1 reserves none."
  type        = number
  default     = -1
}

variable "log_retention_days" {
  description = "Days to keep the consumer's logs."
  type        = number
  default     = 365
}

variable "target_maximum_retry_attempts" {
  description = "Times EventBridge retries delivering an event to the function (0-185) before sending it to the DLQ."
  type        = number
  default     = 185

  validation {
    condition     = var.target_maximum_retry_attempts >= 0 && var.target_maximum_retry_attempts <= 185
    error_message = "target_maximum_retry_attempts must be between 0 and 185."
  }
}

variable "target_maximum_event_age_seconds" {
  description = "Age after which EventBridge stops retrying delivery and dead-letters the event (60-86400)."
  type        = number
  default     = 86400

  validation {
    condition     = var.target_maximum_event_age_seconds >= 60 && var.target_maximum_event_age_seconds <= 86400
    error_message = "target_maximum_event_age_seconds must be between 60 and 86400."
  }
}

variable "async_maximum_retry_attempts" {
  description = "Times Lambda retries a failed asynchronous invocation (0-2) before sending the event to the DLQ."
  type        = number
  default     = 2

  validation {
    condition     = var.async_maximum_retry_attempts >= 0 && var.async_maximum_retry_attempts <= 2
    error_message = "async_maximum_retry_attempts must be between 0 and 2."
  }
}

variable "async_maximum_event_age_seconds" {
  description = "Age after which Lambda stops retrying a failed asynchronous invocation and dead-letters the event (60-21600, the Lambda limit)."
  type        = number
  default     = 21600

  validation {
    condition     = var.async_maximum_event_age_seconds >= 60 && var.async_maximum_event_age_seconds <= 21600
    error_message = "async_maximum_event_age_seconds must be between 60 and 21600."
  }
}

variable "checkpoint_table_deletion_protection" {
  description = "Refuse to delete the checkpoint table."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs notified by the consumer's alarms."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
