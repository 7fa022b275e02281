output "api_url" {
  description = "Base URL of the API stage (Authorization: a Cognito ID token): ASYNC_JOBS_URL of the async-jobs CLI."
  value       = module.async_jobs.api_url
}

output "jobs_url" {
  description = "URL of the jobs collection, <api_url>/jobs (POST to submit)."
  value       = module.async_jobs.jobs_url
}

output "api_routes" {
  description = "Routes of the API and the function each one invokes."
  value       = module.async_jobs.api_routes
}

output "cognito_user_pool_id" {
  description = "User pool whose tokens the API accepts."
  value       = aws_cognito_user_pool.this.id
}

output "state_bucket_name" {
  description = "Name of the state bucket."
  value       = module.async_jobs.state_bucket_name
}

output "record_schema_key" {
  description = "Key of the record JSON Schema in the state bucket."
  value       = module.async_jobs.record_schema_key
}

output "queue_url" {
  description = "URL of the work queue."
  value       = module.async_jobs.queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.async_jobs.dlq_url
}

output "worker_dead_letter_event_source_mapping" {
  description = "Settings of the DLQ's event source mapping to the worker (dead-letter accounting)."
  value       = module.async_jobs.worker_dead_letter_event_source_mapping
}

output "alarm_arns" {
  description = "ARNs of the alarms."
  value       = module.async_jobs.alarm_arns
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.async_jobs.dashboard_name
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts everything."
  value       = aws_kms_key.this.arn
}
