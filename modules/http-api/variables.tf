################################################################################
# API
################################################################################

variable "name" {
  description = "Name of the API; prefix of its authorizer name."
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
  description = "Routes by route key \"METHOD /path\": method, path, resource (unused here; the REST flavour hangs methods on it) and function (a key of functions)."
  type = map(object({
    method   = string
    path     = string
    resource = string
    function = string
  }))
}

variable "functions" {
  description = "Functions the routes invoke, by key: name and invoke_arn (one integration each, payload format 2.0)."
  type = map(object({
    name       = string
    invoke_arn = string
  }))
}

################################################################################
# Authorization
################################################################################

variable "authorization" {
  description = "Authorization of every route: AWS_IAM, JWT (jwt_authorizer) or NONE. COGNITO and API_KEY are refused: they need a REST API."
  type        = string

  validation {
    condition     = contains(["AWS_IAM", "JWT", "COGNITO", "API_KEY", "NONE"], var.authorization)
    error_message = "authorization must be one of AWS_IAM, JWT, COGNITO, API_KEY, NONE."
  }
}

variable "jwt_authorizer" {
  description = "JWT authorizer (authorization = JWT): issuer URL and accepted audiences."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null
}

################################################################################
# Stage
################################################################################

variable "stage_name" {
  description = "Stage name (`$default` for URLs without a stage segment)."
  type        = string
}

variable "throttling_burst_limit" {
  description = "Default route throttling burst limit (requests)."
  type        = number
}

variable "throttling_rate_limit" {
  description = "Default route throttling steady-state rate (requests per second)."
  type        = number
}

variable "access_log_destination_arn" {
  description = "Log group ARN of the access logs."
  type        = string
}
