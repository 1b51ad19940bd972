variable "name" {
  description = "Name of the HTTP API."
  type        = string
}

variable "function_name" {
  description = "Name of the query-api function."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the query-api function."
  type        = string
}

variable "command_function_name" {
  description = "Name of the command-api function (POST /entities/{entity_id}/events)."
  type        = string
}

variable "command_invoke_arn" {
  description = "Invoke ARN of the command-api function."
  type        = string
}

variable "write_scopes" {
  description = "With JWT authorization, the scopes a token needs to append events."
  type        = list(string)
  default     = ["tideline/write"]
}

variable "authorization" {
  description = "How callers authenticate: AWS_IAM (SigV4, execute-api:Invoke in the caller's policy) or JWT (an OIDC issuer)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT"], var.authorization)
    error_message = "authorization must be AWS_IAM or JWT."
  }
}

variable "jwt_issuer" {
  description = "OIDC issuer URL, required when authorization is JWT (for example https://cognito-idp.<region>.amazonaws.com/<pool-id>)."
  type        = string
  default     = null

  validation {
    condition     = var.authorization != "JWT" || (var.jwt_issuer != null && can(regex("^https://", coalesce(var.jwt_issuer, "-"))))
    error_message = "jwt_issuer must be an https:// URL when authorization is JWT."
  }
}

variable "jwt_audience" {
  description = "Accepted `aud` values (client ids), required when authorization is JWT."
  type        = list(string)
  default     = []

  validation {
    condition     = var.authorization != "JWT" || length(var.jwt_audience) > 0
    error_message = "jwt_audience needs at least one value when authorization is JWT."
  }
}

variable "throttling_rate_limit" {
  description = "Steady-state requests per second the stage accepts."
  type        = number
  default     = 100
}

variable "throttling_burst_limit" {
  description = "Burst of requests the stage accepts."
  type        = number
  default     = 200
}

variable "integration_timeout_ms" {
  description = "How long API Gateway waits for the function (HTTP APIs allow 50-30000 ms)."
  type        = number
  default     = 10000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 30000
    error_message = "integration_timeout_ms must be between 50 and 30000."
  }
}

variable "kms_key_arn" {
  description = "Customer managed key for the access log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the access logs."
  type        = number
  default     = 365
}

variable "alarm_actions" {
  description = "ARNs notified when the API returns server errors."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

variable "latency_alarm_ms" {
  description = "Alarm when the API's p99 latency stays above this many milliseconds for 15 minutes."
  type        = number
  default     = 2000
}
