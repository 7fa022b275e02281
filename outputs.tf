################################################################################
# State bucket
################################################################################

output "state_bucket_name" {
  description = "Name of the state bucket (job inputs, state, results)."
  value       = aws_s3_bucket.state.id
}

output "state_bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "record_schema_key" {
  description = "S3 key of the record JSON Schema in the state bucket, or null when record_schema is not set."
  value       = var.record_schema == null ? null : local.record_schema_key
}

################################################################################
# Queues
################################################################################

output "queue_url" {
  description = "URL of the work queue."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the work queue."
  value       = aws_sqs_queue.this.arn
}

output "queue_name" {
  description = "Name of the work queue."
  value       = aws_sqs_queue.this.name
}

output "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the work queue."
  value       = aws_sqs_queue.this.visibility_timeout_seconds
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

################################################################################
# Functions
################################################################################

output "submit_function_name" {
  description = "Name of the submit function."
  value       = module.submit.function_name
}

output "submit_function_arn" {
  description = "ARN of the submit function."
  value       = module.submit.function_arn
}

output "submit_role_arn" {
  description = "ARN of the submit function's role."
  value       = module.submit.role_arn
}

output "submit_log_group_name" {
  description = "Log group of the submit function."
  value       = module.submit.log_group_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.worker.function_name
}

output "worker_function_arn" {
  description = "ARN of the worker function."
  value       = module.worker.function_arn
}

output "worker_role_arn" {
  description = "ARN of the worker function's role."
  value       = module.worker.role_arn
}

output "worker_log_group_name" {
  description = "Log group of the worker function."
  value       = module.worker.log_group_name
}

output "status_function_name" {
  description = "Name of the status function."
  value       = module.status.function_name
}

output "status_function_arn" {
  description = "ARN of the status function."
  value       = module.status.function_arn
}

output "status_role_arn" {
  description = "ARN of the status function's role."
  value       = module.status.role_arn
}

output "status_log_group_name" {
  description = "Log group of the status function."
  value       = module.status.log_group_name
}

output "function_runtime" {
  description = "Runtime of the functions (the packages must be built for it)."
  value       = local.runtime
}

output "function_architecture" {
  description = "Architecture of the functions (the packages must be built for it)."
  value       = local.architecture
}

################################################################################
# Worker event source mapping
################################################################################

output "worker_event_source_mapping_uuid" {
  description = "UUID of the worker's SQS event source mapping."
  value       = aws_lambda_event_source_mapping.worker.uuid
}

output "worker_event_source_mapping" {
  description = "Settings of the worker's SQS event source mapping: batch_size, maximum_batching_window_in_seconds, maximum_concurrency, function_response_types, enabled."
  value = {
    batch_size                         = aws_lambda_event_source_mapping.worker.batch_size
    maximum_batching_window_in_seconds = aws_lambda_event_source_mapping.worker.maximum_batching_window_in_seconds
    maximum_concurrency                = var.worker_maximum_concurrency
    function_response_types            = aws_lambda_event_source_mapping.worker.function_response_types
    enabled                            = aws_lambda_event_source_mapping.worker.enabled
  }
}

output "worker_dead_letter_event_source_mapping" {
  description = "Settings of the DLQ's event source mapping to the worker (dead-letter accounting), or null when dead_letter_accounting_enabled = false: batch_size, maximum_batching_window_in_seconds, maximum_concurrency, function_response_types, enabled."
  value = var.dead_letter_accounting_enabled ? {
    batch_size                         = aws_lambda_event_source_mapping.worker_dead_letters[0].batch_size
    maximum_batching_window_in_seconds = 0
    maximum_concurrency                = 2
    function_response_types            = aws_lambda_event_source_mapping.worker_dead_letters[0].function_response_types
    enabled                            = aws_lambda_event_source_mapping.worker_dead_letters[0].enabled
  } : null
}

################################################################################
# API
################################################################################

output "api_id" {
  description = "Id of the REST or HTTP API."
  value       = local.api_id
}

output "api_type" {
  description = "Type of the API: rest or http."
  value       = var.api_type
}

output "api_authorization" {
  description = "Authorization of the routes: AWS_IAM, JWT, COGNITO, API_KEY or NONE."
  value       = var.authorization
}

output "api_execution_arn" {
  description = "Execution ARN of the API (for IAM policies of callers: execute-api:Invoke on <arn>/<stage>/<METHOD>/jobs...)."
  value       = local.api_execution_arn
}

output "api_stage_name" {
  description = "Name of the API stage."
  value       = local.api_stage_name
}

output "api_stage_arn" {
  description = "ARN of the API stage (to associate a WAF web ACL)."
  value       = local.api.stage_arn
}

output "api_url" {
  description = "Base URL of the API stage, without a trailing slash."
  value       = local.api_url
}

output "jobs_url" {
  description = "URL of the jobs collection (POST to submit)."
  value       = "${local.api_url}/jobs"
}

output "api_routes" {
  description = "Routes of the API (\"METHOD /path\") and the name of the function each one invokes."
  value       = { for k, r in local.routes : k => local.route_functions[r.function].name }
}

output "api_log_group_name" {
  description = "Log group of the API access logs, or null (REST API with api_gateway_cloudwatch_role = \"none\")."
  value       = try(aws_cloudwatch_log_group.api_access[0].name, null)
}

output "api_key_id" {
  description = "Id of the API key the module created (authorization = API_KEY), or null."
  value       = try(module.rest_api[0].api_key_id, null)
}

output "api_key_value" {
  description = "Value of the API key the module created (authorization = API_KEY), or null."
  value       = try(module.rest_api[0].api_key_value, null)
  sensitive   = true
}

output "api_usage_plan_id" {
  description = "Id of the usage plan (authorization = API_KEY), or null; add more keys to it."
  value       = try(module.rest_api[0].usage_plan_id, null)
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms by key; empty when create_alarms = false."
  value       = try(module.alarms[0].alarm_arns, {})
}

output "sns_topic_arn" {
  description = "ARN of the alarm topic the module created, or null (alarm_sns_topic_arns given or create_alarms = false)."
  value       = try(module.alarms[0].sns_topic_arn, null)
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null when create_alarms = false."
  value       = try(module.alarms[0].dashboard_name, null)
}

################################################################################
# Completion events and callbacks
################################################################################

output "events_bus_arn" {
  description = "ARN of the event bus the completion events go to (source events.source, detail-type \"Job Ended\"), or null when events are off."
  value       = local.events_enabled ? local.events_bus_arn : null
}

output "callback_secret_arn" {
  description = "ARN of the Secrets Manager secret whose value signs callbacks (Async-Jobs-Signature), or null when no callback host is allowed. Receivers read it to verify."
  value       = local.callback_secret_arn
}
