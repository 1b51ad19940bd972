variable "region" {
  description = "AWS region to deploy to; null uses AWS_REGION / the profile's region."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "tideline"
}

variable "lambda_zip_dir" {
  description = "Directory of cargo-lambda's zips; null means <repo>/target/lambda."
  type        = string
  default     = null
}

variable "rules_file" {
  description = "Rules file shared with local mode; null means rules.json next to this file."
  type        = string
  default     = null
}

variable "alarm_email" {
  description = "E-mail address for alarms; null subscribes nobody."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the tables from deletion; set false for a throwaway stack you will destroy."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days to keep logs."
  type        = number
  default     = 365
}

variable "enable_schema_registry" {
  description = "Register the integration event schema (schemas/integration-event.draft4.schema.json) in an EventBridge schema registry."
  type        = bool
  default     = false
}

variable "responder_gap_policy" {
  description = "TIDELINE_GAP_POLICY of the example consumer; null keeps the code's default."
  type        = string
  default     = null
}

variable "responder_event_pattern_json" {
  description = "Event pattern printed by a registry-based consumer binary (`--print-event-pattern`); null keeps the rules file's pattern for the example consumer."
  type        = string
  default     = null

  validation {
    condition     = var.responder_event_pattern_json == null || can(length(jsondecode(var.responder_event_pattern_json)["detail-type"]) > 0 ? 1 : tonumber("x"))
    error_message = "responder_event_pattern_json must list one or more detail types (the registry's --print-event-pattern output)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "realtime_jwks_file" {
  description = "Path to your identity provider's JSON Web Key Set (for example its /.well-known/jwks.json, saved). Set it to deploy the realtime fan-out (docs/realtime.md); null leaves it off."
  type        = string
  default     = null
}

variable "realtime_issuer" {
  description = "The iss realtime tokens must carry; null accepts any issuer whose key is in the JWKS."
  type        = string
  default     = null
}

variable "low_latency" {
  description = "Events reach the bus and realtime subscribers about a second after ingest, for more and smaller invocations (the root module's low_latency; `tideline cost --low-latency` prices it)."
  type        = bool
  default     = false
}
