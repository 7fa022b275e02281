output "api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_api_gateway_stage.this.stage_name
}

output "stage_arn" {
  description = "ARN of the stage (to associate a WAF web ACL)."
  value       = aws_api_gateway_stage.this.arn
}

output "invoke_url" {
  description = "Base URL of the stage, without a trailing slash."
  value       = trimsuffix(aws_api_gateway_stage.this.invoke_url, "/")
}

output "access_log_format" {
  description = "Fields of the access log lines (the stage writes them only with a CloudWatch role)."
  value       = local.access_log_format
}

output "api_key_id" {
  description = "Id of the API key the module created (authorization = API_KEY), or null."
  value       = try(aws_api_gateway_api_key.this[0].id, null)
}

output "api_key_value" {
  description = "Value of the API key the module created (authorization = API_KEY), or null."
  value       = try(aws_api_gateway_api_key.this[0].value, null)
  sensitive   = true
}

output "usage_plan_id" {
  description = "Id of the usage plan (authorization = API_KEY), or null."
  value       = try(aws_api_gateway_usage_plan.this[0].id, null)
}
