output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_apigatewayv2_stage.this.name
}

output "stage_arn" {
  description = "ARN of the stage (to associate a WAF web ACL)."
  value       = aws_apigatewayv2_stage.this.arn
}

output "invoke_url" {
  description = "Base URL of the stage, without a trailing slash."
  value       = trimsuffix(aws_apigatewayv2_stage.this.invoke_url, "/")
}

output "access_log_format" {
  description = "Fields of the access log lines."
  value       = local.access_log_format
}
