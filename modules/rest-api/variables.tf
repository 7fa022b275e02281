################################################################################
# API
################################################################################

variable "name" {
  description = "Name of the API; prefix of its authorizer, validator, usage plan, key and role names."
  type        = string
}

variable "description" {
  description = "Description of the API."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "routes" {
  description = "Routes by \"METHOD /path\": method, path, resource (jobs, uploads, job or retry: the REST resource the method hangs on) and function (a key of functions)."
  type = map(object({
    method   = string
    path     = string
    resource = string
    function = string
  }))

  validation {
    condition     = alltrue([for r in values(var.routes) : contains(["jobs", "uploads", "job", "retry"], r.resource)])
    error_message = "routes.*.resource must be jobs, uploads, job or retry."
  }
}

variable "functions" {
  description = "Functions the routes invoke, by key: name and invoke_arn."
  type = map(object({
    name       = string
    invoke_arn = string
  }))
}

variable "problem_type_base" {
  description = "Prefix of the RFC 9457 `type` of API Gateway's own error responses; the slug of the title follows."
  type        = string
  default     = "https://async-jobs.dev/problems/"
}

################################################################################
# Authorization
################################################################################

variable "authorization" {
  description = "Authorization of every method: AWS_IAM, COGNITO (cognito_user_pool_arns), API_KEY (usage plan) or NONE. JWT is refused: it needs an HTTP API."
  type        = string

  validation {
    condition     = contains(["AWS_IAM", "JWT", "COGNITO", "API_KEY", "NONE"], var.authorization)
    error_message = "authorization must be one of AWS_IAM, JWT, COGNITO, API_KEY, NONE."
  }
}

variable "cognito_user_pool_arns" {
  description = "User pools of the Cognito authorizer (authorization = COGNITO)."
  type        = list(string)
  default     = []
}

variable "api_key" {
  description = "authorization = API_KEY: create a key (`create`) and the usage plan quota (`quota_limit` requests per `quota_period`; null = no quota)."
  type = object({
    create       = optional(bool, true)
    quota_limit  = optional(number)
    quota_period = optional(string, "DAY")
  })
  default = {}
}

################################################################################
# Stage
################################################################################

variable "stage_name" {
  description = "Stage name: the first path segment of the URLs."
  type        = string
}

variable "tracing_enabled" {
  description = "X-Ray tracing on the stage."
  type        = bool
  default     = true
}

variable "throttling_burst_limit" {
  description = "Stage throttling burst limit (requests)."
  type        = number
}

variable "throttling_rate_limit" {
  description = "Stage throttling steady-state rate (requests per second)."
  type        = number
}

################################################################################
# Logs
################################################################################

variable "cloudwatch_role" {
  description = "API Gateway's account-level CloudWatch Logs role, which REST access and execution logs need: none (no REST logs), existing (set in this account and region by someone else) or create (this module sets it)."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "existing", "create"], var.cloudwatch_role)
    error_message = "cloudwatch_role must be none, existing or create."
  }
}

variable "access_log_destination_arn" {
  description = "Log group ARN of the access logs; required when cloudwatch_role is existing or create, unused otherwise."
  type        = string
  default     = null
}

variable "execution_logging_level" {
  description = "Execution logging level (OFF, ERROR, INFO); null is ERROR with a CloudWatch role, OFF without."
  type        = string
  default     = null
}

variable "log_retention_in_days" {
  description = "Retention of the execution log group."
  type        = number
  default     = 30
}

variable "keep_log_groups_on_destroy" {
  description = "Leave the execution log group (and its logs) in the account when the API is destroyed."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key of the execution log group; null uses CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "Permissions boundary of the CloudWatch role (cloudwatch_role = create)."
  type        = string
  default     = null
}
