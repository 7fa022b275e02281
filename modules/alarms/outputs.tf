output "alarm_arns" {
  description = "ARNs of the alarms by key (dlq_messages, queue_oldest_message_age, worker_errors, worker_throttles, worker_duration, api_5xx, api_latency_p95, jobs_failed)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.arn }
}

output "alarm_names" {
  description = "Names of the alarms by key."
  value       = { for k, a in aws_cloudwatch_metric_alarm.this : k => a.alarm_name }
}

output "sns_topic_arn" {
  description = "ARN of the topic the module created, or null when sns_topic_arns was given."
  value       = try(aws_sns_topic.alarms[0].arn, null)
}

output "alarm_actions" {
  description = "Topics the alarms notify."
  value       = local.alarm_actions
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "topic_kms_key_arn" {
  description = "ARN of the key the module created for its topic, or null."
  value       = try(aws_kms_key.topic[0].arn, null)
}
