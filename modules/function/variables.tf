################################################################################
# Function
################################################################################

variable "function_name" {
  description = "Name of the Lambda function (also names its role and log group)."
  type        = string
}

variable "description" {
  description = "Description of the Lambda function."
  type        = string
  default     = null
}

variable "handler" {
  description = "Handler of the function, `module.function`."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string

  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be one of python3.12, python3.13 (python3.14 needs hashicorp/aws >= 6.20)."
  }
}

variable "architecture" {
  description = "Instruction set architecture: arm64 or x86_64."
  type        = string

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory in MB (128..10240)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "timeout" {
  description = "Timeout in seconds (1..900)."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency; null leaves the function unreserved."
  type        = number
  default     = null
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "application_log_level" {
  description = "Lambda's filter for the function's JSON application logs (TRACE, DEBUG, INFO, WARN, ERROR, FATAL). Lines without a level (EMF metrics) count as INFO, so above INFO they are dropped."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.application_log_level)
    error_message = "application_log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "system_log_level" {
  description = "Lambda's filter for the platform's own log lines (DEBUG, INFO, WARN); INFO keeps the REPORT lines."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN"], var.system_log_level)
    error_message = "system_log_level must be one of DEBUG, INFO, WARN."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing mode: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "vpc_config" {
  description = "Subnets and security groups to run the function in; null runs it outside a VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

################################################################################
# Package
################################################################################

variable "package" {
  description = "Deployment package: a local zip (`filename`) or an S3 object (`s3_bucket`, `s3_key`, optional `s3_object_version`)."
  type = object({
    filename          = optional(string)
    s3_bucket         = optional(string)
    s3_key            = optional(string)
    s3_object_version = optional(string)
  })

  validation {
    condition     = (var.package.filename != null) != (var.package.s3_bucket != null && var.package.s3_key != null)
    error_message = "package must set either filename or both s3_bucket and s3_key."
  }
}

variable "package_label" {
  description = "How the caller names this package in messages, e.g. `packages.worker`."
  type        = string
  default     = "package"
}

variable "check_manifest" {
  description = "When a `manifest.json` (`{\"runtime\", \"architecture\"}`, written by `make build`) sits next to the local zip, fail the plan if it was built for another runtime or architecture."
  type        = bool
  default     = true
}

################################################################################
# IAM
################################################################################

variable "role_name" {
  description = "Name of the execution role; null uses function_name. IAM names are account-global: include the region when the same function name may exist in another region. At most 64 characters."
  type        = string
  default     = null

  validation {
    condition     = var.role_name == null || length(coalesce(var.role_name, "-")) <= 64
    error_message = "role_name must be at most 64 characters (the IAM limit)."
  }
}

variable "policy_json" {
  description = "Inline policy (JSON) with the function's own permissions; logs, X-Ray and VPC permissions are added by the module."
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "ARN of the permissions boundary of the role."
  type        = string
  default     = null
}

################################################################################
# Logs and encryption
################################################################################

variable "log_retention_in_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 30
}

variable "keep_log_group_on_destroy" {
  description = "Leave the log group (and its logs) in the account when the function is destroyed or renamed."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key ARN for the log group and the environment variables; null uses AWS-managed encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
