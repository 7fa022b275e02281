variable "vpc_id" {
  description = "VPC of the database and the worker."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more Availability Zones) for the database and the worker. The worker reaches S3 and SQS from them through a NAT gateway or VPC endpoints (S3 gateway, SQS interface)."
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
