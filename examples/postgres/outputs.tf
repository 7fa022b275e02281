output "jobs_url" {
  description = "URL to POST jobs to (SigV4-signed: authorization is AWS_IAM)."
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
