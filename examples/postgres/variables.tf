variable "vpc_id" {
  description = "VPC of the database and the worker."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more Availability Zones) for the database and the worker. The worker reaches AWS from them through a NAT gateway or VPC endpoints: S3 (gateway), SQS, EventBridge (events, on by default) and, with callbacks, Secrets Manager; callbacks to outside URLs need a NAT gateway."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets in different Availability Zones (an RDS subnet group requires two)."
  }
}

variable "worker_concurrency" {
  description = "Most worker invocations at once: each holds one database connection, so this is the most connections the jobs take from the database."
  type        = number
  default     = 4
}

variable "database_ca_bundle" {
  description = "CA bundle the worker verifies the database's certificate with (sslmode verify-full): a path inside the worker package, e.g. the RDS global bundle added as certs/global-bundle.pem, or \"system\". null: TLS without verification (sslmode require)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the database instance (turn off only for a throwaway environment)."
  type        = bool
  default     = true
}
