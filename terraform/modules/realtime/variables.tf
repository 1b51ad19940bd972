variable "name" {
  description = "Name prefix of the realtime resources."
  type        = string
}

variable "lambda_zip_dir" {
  description = "Directory of the cargo-lambda zips (<binary>/bootstrap.zip)."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture of the zips (arm64 or x86_64)."
  type        = string
}

variable "event_bus_name" {
  description = "The bus whose events are relayed to subscribers."
  type        = string
}

variable "event_source" {
  description = "The `source` the emitter stamps: the relay's rule matches it."
  type        = string
}

variable "events_table_name" {
  description = "The events table: a subscribe with `since` reads the missed events from it."
  type        = string
}

variable "events_table_arn" {
  description = "ARN of the events table."
  type        = string
}

variable "jwks" {
  description = "The identity provider's JSON Web Key Set (the text of {\"keys\": [...]}) the authorizer checks RS256 tokens against; read at cold start, no network call."
  type        = string

  validation {
    condition     = can(jsondecode(var.jwks).keys)
    error_message = "realtime jwks must be a JSON Web Key Set: {\"keys\": [...]}."
  }
}

variable "issuer" {
  description = "The tokens' required `iss`; null accepts any issuer the keys sign for."
  type        = string
  default     = null
}

variable "relay_concurrency" {
  description = "Most PostToConnection calls the relay has in flight; null keeps the code's default (32)."
  type        = number
  default     = null
}

variable "stage_name" {
  description = "The WebSocket API's stage."
  type        = string
  default     = "live"
}

variable "http_api_id" {
  description = "The HTTP API (modules/api) that gets POST /subscriptions and DELETE /subscriptions/{id}."
  type        = string
}

variable "http_api_execution_arn" {
  description = "Execution ARN of that HTTP API."
  type        = string
}

variable "http_api_authorization" {
  description = "Its authorization: AWS_IAM or JWT (as modules/api)."
  type        = string
}

variable "http_api_authorizer_id" {
  description = "Its JWT authorizer, when authorization is JWT."
  type        = string
  default     = null
}

variable "write_scopes" {
  description = "Scopes a JWT needs to manage subscriptions server-side (the API's write scopes)."
  type        = list(string)
}

variable "throttling_rate_limit" {
  description = "Steady-state messages per second the WebSocket stage accepts."
  type        = number
  default     = 500
}

variable "throttling_burst_limit" {
  description = "Burst of messages the WebSocket stage accepts."
  type        = number
  default     = 1000
}

variable "kms_key_arn" {
  description = "Key that encrypts the connections table, the functions' environment and logs."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's logs."
  type        = number
}

variable "alarm_actions" {
  description = "Where alarms notify."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
