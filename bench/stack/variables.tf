variable "aws_endpoint_url" {
  description = "Endpoint of the local AWS emulator (moto server) every service is sent to."
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "name" {
  description = "Name of the deployment."
  type        = string
  default     = "async-jobs-bench"
}
