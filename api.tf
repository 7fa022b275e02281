################################################################################
# API: REST (modules/rest-api) or HTTP (modules/http-api), one interface
################################################################################

locals {
  is_rest = var.api_type == "rest"
  is_http = var.api_type == "http"

  # Routes -> functions. The submit function owns job creation, cancellation and retries; the
  # status function serves the GET routes and only reads.
  # S3 cannot notify a FIFO queue, so a FIFO deployment has no upload route: an upload
  # it accepted would never start.
  # The routes are the contract's (functions/shared/async_jobs/contract.json), keyed "METHOD path".
  all_routes = { for route in local.contract.routes : "${route.method} ${route.path}" => route }
  routes     = { for key, route in local.all_routes : key => route if !(var.queue_fifo && route.resource == "uploads") }

  route_functions = {
    submit = { name = module.submit.function_name, invoke_arn = module.submit.function_invoke_arn }
    status = { name = module.status.function_name, invoke_arn = module.status.function_invoke_arn }
  }

  # REST logs (access and execution) need the account's API Gateway CloudWatch role; HTTP API
  # access logs do not.
  access_logging = local.is_http || var.api_gateway_cloudwatch_role != "none"

  # The chosen flavour's outputs; both submodules have the same ones.
  api = local.is_rest ? {
    api_id     = module.rest_api[0].api_id
    stage_name = module.rest_api[0].stage_name
    stage_arn  = module.rest_api[0].stage_arn
    invoke_url = module.rest_api[0].invoke_url
    } : {
    api_id     = module.http_api[0].api_id
    stage_name = module.http_api[0].stage_name
    stage_arn  = module.http_api[0].stage_arn
    invoke_url = module.http_api[0].invoke_url
  }

  api_id            = local.api.api_id
  api_execution_arn = "arn:${local.partition}:execute-api:${local.region}:${local.account_id}:${local.api_id}"
  api_stage_name    = local.api.stage_name
  api_url           = local.api.invoke_url
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_338:retention is an input (log_retention_in_days)
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); CloudWatch Logs encrypts at rest by default
  count = local.access_logging ? 1 : 0

  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  skip_destroy      = var.keep_log_groups_on_destroy
  tags              = var.tags
}

module "rest_api" {
  source = "./modules/rest-api"
  count  = local.is_rest ? 1 : 0

  name        = var.name
  description = "Asynchronous job API of ${var.name}."
  tags        = var.tags
  routes      = local.routes
  functions   = local.route_functions

  authorization          = var.authorization
  cognito_user_pool_arns = var.cognito_user_pool_arns
  api_key                = var.api_key

  stage_name             = var.stage_name
  tracing_enabled        = var.tracing_enabled
  throttling_burst_limit = var.throttling_burst_limit
  throttling_rate_limit  = var.throttling_rate_limit

  cloudwatch_role            = var.api_gateway_cloudwatch_role
  access_log_destination_arn = try(aws_cloudwatch_log_group.api_access[0].arn, null)
  execution_logging_level    = var.api_execution_logging_level
  log_retention_in_days      = var.log_retention_in_days
  keep_log_groups_on_destroy = var.keep_log_groups_on_destroy
  kms_key_arn                = var.kms_key_arn
  permissions_boundary       = var.permissions_boundary
}

module "http_api" {
  source = "./modules/http-api"
  count  = local.is_http ? 1 : 0

  name        = var.name
  description = "Asynchronous job API of ${var.name}."
  tags        = var.tags
  routes      = local.routes
  functions   = local.route_functions

  authorization  = var.authorization
  jwt_authorizer = var.jwt_authorizer

  stage_name                 = var.stage_name
  throttling_burst_limit     = var.throttling_burst_limit
  throttling_rate_limit      = var.throttling_rate_limit
  access_log_destination_arn = aws_cloudwatch_log_group.api_access[0].arn
}

resource "aws_lambda_permission" "api" {
  for_each = local.routes

  statement_id  = "api-${each.value.method}${replace(replace(replace(each.value.path, "/", "-"), "{", ""), "}", "")}"
  action        = "lambda:InvokeFunction"
  function_name = local.route_functions[each.value.function].name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${local.api_execution_arn}/*/${each.value.method}${replace(each.value.path, "{job_id}", "*")}"
}
