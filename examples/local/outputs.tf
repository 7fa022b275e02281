output "state_bucket_name" {
  description = "Name of the state bucket (job inputs, state, results)."
  value       = module.async_jobs.state_bucket_name
}

output "state_bucket_arn" {
  description = "ARN of the state bucket."
  value       = module.async_jobs.state_bucket_arn
}

output "record_schema_key" {
  description = "S3 key of the record JSON Schema in the state bucket, or null when record_schema is not set."
  value       = module.async_jobs.record_schema_key
}

output "queue_url" {
  description = "URL of the work queue."
  value       = module.async_jobs.queue_url
}

output "queue_arn" {
  description = "ARN of the work queue."
  value       = module.async_jobs.queue_arn
}

output "queue_name" {
  description = "Name of the work queue."
  value       = module.async_jobs.queue_name
}

output "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the work queue."
  value       = module.async_jobs.queue_visibility_timeout_seconds
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.async_jobs.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.async_jobs.dlq_arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = module.async_jobs.dlq_name
}

output "submit_function_name" {
  description = "Name of the submit function."
  value       = module.async_jobs.submit_function_name
}

output "submit_function_arn" {
  description = "ARN of the submit function."
  value       = module.async_jobs.submit_function_arn
}

output "submit_role_arn" {
  description = "ARN of the submit function's role."
  value       = module.async_jobs.submit_role_arn
}

output "submit_log_group_name" {
  description = "Log group of the submit function."
  value       = module.async_jobs.submit_log_group_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.async_jobs.worker_function_name
}

output "worker_function_arn" {
  description = "ARN of the worker function."
  value       = module.async_jobs.worker_function_arn
}

output "worker_role_arn" {
  description = "ARN of the worker function's role."
  value       = module.async_jobs.worker_role_arn
}

output "worker_log_group_name" {
  description = "Log group of the worker function."
  value       = module.async_jobs.worker_log_group_name
}

output "status_function_name" {
  description = "Name of the status function."
  value       = module.async_jobs.status_function_name
}

output "status_function_arn" {
  description = "ARN of the status function."
  value       = module.async_jobs.status_function_arn
}

output "status_role_arn" {
  description = "ARN of the status function's role."
  value       = module.async_jobs.status_role_arn
}

output "status_log_group_name" {
  description = "Log group of the status function."
  value       = module.async_jobs.status_log_group_name
}

output "function_runtime" {
  description = "Runtime of the functions (the packages must be built for it)."
  value       = module.async_jobs.function_runtime
}

output "function_architecture" {
  description = "Architecture of the functions (the packages must be built for it)."
  value       = module.async_jobs.function_architecture
}

output "worker_event_source_mapping_uuid" {
  description = "UUID of the worker's SQS event source mapping."
  value       = module.async_jobs.worker_event_source_mapping_uuid
}

output "worker_event_source_mapping" {
  description = "Settings of the worker's SQS event source mapping: batch_size, maximum_batching_window_in_seconds, maximum_concurrency, function_response_types, enabled."
  value       = module.async_jobs.worker_event_source_mapping
}

output "worker_dead_letter_event_source_mapping" {
  description = "Settings of the DLQ's event source mapping to the worker (dead-letter accounting), or null when it is off."
  value       = module.async_jobs.worker_dead_letter_event_source_mapping
}

output "api_id" {
  description = "Id of the REST or HTTP API."
  value       = module.async_jobs.api_id
}

output "api_type" {
  description = "Type of the API: rest or http."
  value       = module.async_jobs.api_type
}

output "api_authorization" {
  description = "Authorization of the routes: AWS_IAM, JWT, COGNITO, API_KEY or NONE."
  value       = module.async_jobs.api_authorization
}

output "api_execution_arn" {
  description = "Execution ARN of the API (for IAM policies of callers: execute-api:Invoke on <arn>/<stage>/<METHOD>/jobs...)."
  value       = module.async_jobs.api_execution_arn
}

output "api_stage_name" {
  description = "Name of the API stage."
  value       = module.async_jobs.api_stage_name
}

output "api_stage_arn" {
  description = "ARN of the API stage (to associate a WAF web ACL)."
  value       = module.async_jobs.api_stage_arn
}

output "api_url" {
  description = "Base URL of the API stage, without a trailing slash."
  value       = module.async_jobs.api_url
}

output "jobs_url" {
  description = "URL of the jobs collection (POST to submit)."
  value       = module.async_jobs.jobs_url
}

output "api_routes" {
  description = "Routes of the API (\"METHOD /path\") and the name of the function each one invokes."
  value       = module.async_jobs.api_routes
}

output "api_log_group_name" {
  description = "Log group of the API access logs."
  value       = module.async_jobs.api_log_group_name
}

output "api_key_id" {
  description = "Id of the API key the module created (authorization = API_KEY), or null."
  value       = module.async_jobs.api_key_id
}

output "api_key_value" {
  description = "Value of the API key the module created (authorization = API_KEY), or null."
  value       = module.async_jobs.api_key_value
  sensitive   = true
}

output "api_usage_plan_id" {
  description = "Id of the usage plan (authorization = API_KEY), or null; add more keys to it."
  value       = module.async_jobs.api_usage_plan_id
}

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms by key; empty when create_alarms = false."
  value       = module.async_jobs.alarm_arns
}

output "sns_topic_arn" {
  description = "ARN of the alarm topic the module created, or null (alarm_sns_topic_arns given or create_alarms = false)."
  value       = module.async_jobs.sns_topic_arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null when create_alarms = false."
  value       = module.async_jobs.dashboard_name
}

output "events_bus_arn" {
  description = "ARN of the event bus the completion events go to."
  value       = module.async_jobs.events_bus_arn
}

output "callback_secret_arn" {
  description = "ARN of the secret that signs callbacks, or null when no callback host is allowed."
  value       = module.async_jobs.callback_secret_arn
}
