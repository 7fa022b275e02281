output "api_url" {
  description = "Base URL of the API stage (SigV4-signed: authorization is AWS_IAM): ASYNC_JOBS_URL of the async-jobs CLI."
  value       = module.async_jobs.api_url
}

output "jobs_url" {
  description = "URL of the jobs collection, <api_url>/jobs (POST to submit)."
  value       = module.async_jobs.jobs_url
}

output "database_address" {
  description = "Endpoint of the PostgreSQL instance the worker writes to."
  value       = aws_db_instance.this.address
}

output "worker_security_group_id" {
  description = "Security group of the worker (the database admits it on 5432)."
  value       = aws_security_group.worker.id
}

output "api_routes" {
  description = "Routes of the API and the function each one invokes."
  value       = module.async_jobs.api_routes
}

output "state_bucket_name" {
  description = "Name of the state bucket (job state, inputs and error reports)."
  value       = module.async_jobs.state_bucket_name
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
