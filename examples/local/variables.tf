variable "aws_endpoint_url" {
  description = "Endpoint of the local AWS emulator (moto server) every service is sent to."
  type        = string
  default     = "http://127.0.0.1:5000"
}

variable "name" {
  description = "Name of the deployment."
  type        = string
  default     = "async-jobs-local"
}

variable "chunk_size" {
  description = "Records per chunk. Tests set it small so that every job has several chunks."
  type        = number
  default     = 1000
}

variable "callback_allowed_hosts" {
  description = "Hosts job callbacks may name. Tests allow \"localhost\" for a local HTTPS receiver."
  type        = list(string)
  default     = []
}

variable "callback_ca_bundle_pem" {
  description = "CA certificate (PEM) of a local test receiver, trusted by the worker for callbacks only."
  type        = string
  default     = null
}

variable "upload_url_ttl_seconds" {
  description = "Lifetime of an upload slot's URL. A test of slots that expire sets the module's minimum, 60."
  type        = number
  default     = 900
}
