################################################################################
# General
################################################################################

variable "name" {
  description = "Prefix of the alarm, topic and dashboard names."
  type        = string
}

variable "region" {
  description = "Region of the monitored resources (dashboard widgets)."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

################################################################################
# Monitored resources
################################################################################

variable "api_type" {
  description = "rest or http: picks the API Gateway metric names and dimensions."
  type        = string

  validation {
    condition     = contains(["rest", "http"], var.api_type)
    error_message = "api_type must be rest or http."
  }
}

variable "api_id" {
  description = "API id (HTTP API dimension ApiId)."
  type        = string
}

variable "api_name" {
  description = "API name (REST API dimension ApiName)."
  type        = string
}

variable "api_stage_name" {
  description = "API stage name (dimension Stage)."
  type        = string
}

variable "queue_name" {
  description = "Name of the work queue."
  type        = string
}

variable "dlq_name" {
  description = "Name of the dead-letter queue."
  type        = string
}

variable "function_names" {
  description = "Names of the submit, worker and status functions."
  type = object({
    submit = string
    worker = string
    status = string
  })
}

variable "dead_letter_accounting" {
  description = "The worker consumes the DLQ: the dlq_messages alarm counts the DLQ's receives (messages are drained within seconds) instead of its depth."
  type        = bool
  default     = true
}

variable "worker_timeout" {
  description = "Timeout of the worker in seconds (duration alarm threshold)."
  type        = number
}

variable "metrics_namespace" {
  description = "Namespace of the functions' Powertools metrics."
  type        = string
}

variable "service_name" {
  description = "Powertools service name (dimension `service`)."
  type        = string
}

################################################################################
# Alarms
################################################################################

variable "thresholds" {
  description = "Alarm thresholds (see the root module's alarm_thresholds)."
  type = object({
    queue_oldest_message_age_seconds = number
    dlq_oldest_message_age_seconds   = optional(number, 600)
    api_latency_p95_ms               = number
    worker_errors                    = number
    jobs_failed                      = number
    worker_duration_timeout_ratio    = number
  })
}

variable "period_seconds" {
  description = "Period of the alarms' metrics in seconds."
  type        = number
  default     = 300
}

variable "sns_topic_arns" {
  description = "Topics notified on ALARM and OK; empty creates one topic."
  type        = list(string)
  default     = []
}

variable "create_topic_kms_key" {
  description = "Encrypt the created topic with a customer managed key (rotation on) whose policy lets cloudwatch.amazonaws.com publish from this account's alarms named `<name>-*`."
  type        = bool
  default     = true
}

variable "topic_kms_key_arn" {
  description = "KMS key of the created topic when create_topic_kms_key = false; null leaves the topic unencrypted. Its key policy must let cloudwatch.amazonaws.com use it (kms:GenerateDataKey*, kms:Decrypt)."
  type        = string
  default     = null

  validation {
    condition     = var.topic_kms_key_arn == null || !endswith(coalesce(var.topic_kms_key_arn, "-"), "alias/aws/sns")
    error_message = "topic_kms_key_arn must not be alias/aws/sns: CloudWatch cannot use the AWS managed SNS key, so alarms would notify nobody. Use a customer managed key that allows cloudwatch.amazonaws.com."
  }
}
