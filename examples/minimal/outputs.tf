output "api_url" {
  description = "Base URL of the API stage (SigV4-signed: authorization is AWS_IAM): ASYNC_JOBS_URL of the async-jobs CLI."
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

output "state_bucket_name" {
  description = "Name of the state bucket."
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

output "sns_topic_arn" {
  description = "Topic the alarms notify: subscribe to it."
  value       = module.async_jobs.sns_topic_arn
}
