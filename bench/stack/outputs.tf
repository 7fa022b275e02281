# The outputs the local runtime and the benchmarks read.

output "api_routes" {
  description = "Route key -> function name."
  value       = module.async_jobs.api_routes
}

output "api_type" {
  description = "rest or http."
  value       = module.async_jobs.api_type
}

output "api_id" {
  description = "API id."
  value       = module.async_jobs.api_id
}

output "api_stage_name" {
  description = "API stage."
  value       = module.async_jobs.api_stage_name
}

output "api_authorization" {
  description = "API authorization."
  value       = module.async_jobs.api_authorization
}

output "api_url" {
  description = "Invoke URL of the stage."
  value       = module.async_jobs.api_url
}

output "queue_url" {
  description = "Work queue."
  value       = module.async_jobs.queue_url
}

output "queue_arn" {
  description = "Work queue ARN."
  value       = module.async_jobs.queue_arn
}

output "state_bucket_name" {
  description = "State bucket."
  value       = module.async_jobs.state_bucket_name
}

output "submit_function_name" {
  description = "Submit function."
  value       = module.async_jobs.submit_function_name
}

output "worker_function_name" {
  description = "Worker function."
  value       = module.async_jobs.worker_function_name
}

output "status_function_name" {
  description = "Status function."
  value       = module.async_jobs.status_function_name
}

output "worker_event_source_mapping" {
  description = "The worker's event source mapping settings (played by the local runtime)."
  value       = module.async_jobs.worker_event_source_mapping
}
