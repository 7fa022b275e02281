################################################################################
# API (shared)
################################################################################

locals {
  is_rest = var.api_type == "rest"
  is_http = var.api_type == "http"

  # Routes -> functions. The submit function owns job creation and cancellation.
  # S3 cannot notify a FIFO queue, so a FIFO deployment has no upload route: an upload
  # it accepted would never start.
  all_routes = {
    "POST /jobs"            = { function = "submit", method = "POST", path = "/jobs", resource = "jobs" }
    "POST /jobs/uploads"    = { function = "submit", method = "POST", path = "/jobs/uploads", resource = "uploads" }
    "GET /jobs/{job_id}"    = { function = "status", method = "GET", path = "/jobs/{job_id}", resource = "job" }
    "DELETE /jobs/{job_id}" = { function = "submit", method = "DELETE", path = "/jobs/{job_id}", resource = "job" }
  }
  routes = { for key, route in local.all_routes : key => route if !(var.queue_fifo && route.resource == "uploads") }

  route_functions = {
    submit = { name = module.submit.function_name, invoke_arn = module.submit.function_invoke_arn }
    status = { name = module.status.function_name, invoke_arn = module.status.function_invoke_arn }
  }

  rest_authorization = {
    AWS_IAM = "AWS_IAM"
    COGNITO = "COGNITO_USER_POOLS"
    API_KEY = "NONE"
    NONE    = "NONE"
    JWT     = "NONE" # rejected by a precondition
  }[var.authorization]

  http_authorization = {
    AWS_IAM = "AWS_IAM"
    JWT     = "JWT"
    NONE    = "NONE"
    COGNITO = "NONE" # rejected by a precondition
    API_KEY = "NONE" # rejected by a precondition
  }[var.authorization]

  # REST logs (access and execution) need the account's API Gateway CloudWatch role; HTTP API
  # access logs do not.
  rest_logging            = local.is_rest && var.api_gateway_cloudwatch_role != "none"
  access_logging          = local.is_http || local.rest_logging
  execution_logging_level = coalesce(var.api_execution_logging_level, local.rest_logging ? "ERROR" : "OFF")

  # API Gateway's own errors (REST gateway responses) as RFC 9457 problems, shaped like the
  # functions' (type = base + slug of the title). Every response type is listed with its
  # documented status, so the two defaults only catch types AWS may add later.
  problem_type_base = "https://async-jobs.dev/problems/"
  gateway_responses = {
    ACCESS_DENIED                  = { status = 403, title = "Forbidden" }
    API_CONFIGURATION_ERROR        = { status = 500, title = "Internal Server Error" }
    AUTHORIZER_CONFIGURATION_ERROR = { status = 500, title = "Internal Server Error" }
    AUTHORIZER_FAILURE             = { status = 500, title = "Internal Server Error" }
    BAD_REQUEST_BODY               = { status = 400, title = "Bad Request" }
    BAD_REQUEST_PARAMETERS         = { status = 400, title = "Bad Request" }
    DEFAULT_4XX                    = { status = 400, title = "Bad Request" }
    DEFAULT_5XX                    = { status = 502, title = "Bad Gateway" }
    EXPIRED_TOKEN                  = { status = 403, title = "Forbidden" }
    INTEGRATION_FAILURE            = { status = 504, title = "Gateway Timeout" }
    INTEGRATION_TIMEOUT            = { status = 504, title = "Gateway Timeout" }
    INVALID_API_KEY                = { status = 403, title = "Forbidden" }
    INVALID_SIGNATURE              = { status = 403, title = "Forbidden" }
    MISSING_AUTHENTICATION_TOKEN   = { status = 403, title = "Forbidden" }
    QUOTA_EXCEEDED                 = { status = 429, title = "Too Many Requests" }
    REQUEST_TOO_LARGE              = { status = 413, title = "Content Too Large" }
    RESOURCE_NOT_FOUND             = { status = 404, title = "Not Found" }
    THROTTLED                      = { status = 429, title = "Too Many Requests" }
    UNAUTHORIZED                   = { status = 401, title = "Unauthorized" }
    UNSUPPORTED_MEDIA_TYPE         = { status = 415, title = "Unsupported Media Type" }
    WAF_FILTERED                   = { status = 403, title = "Forbidden" }
  }

  api_id            = local.is_rest ? aws_api_gateway_rest_api.this[0].id : aws_apigatewayv2_api.this[0].id
  api_execution_arn = "arn:${local.partition}:execute-api:${local.region}:${local.account_id}:${local.api_id}"
  api_stage_name    = local.is_rest ? aws_api_gateway_stage.this[0].stage_name : aws_apigatewayv2_stage.this[0].name
  api_url           = trimsuffix(local.is_rest ? aws_api_gateway_stage.this[0].invoke_url : aws_apigatewayv2_stage.this[0].invoke_url, "/")

  access_log_format = local.is_rest ? {
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    requestTime        = "$context.requestTime"
    ip                 = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    caller             = "$context.identity.caller"
    userArn            = "$context.identity.userArn"
    apiKeyId           = "$context.identity.apiKeyId"
    httpMethod         = "$context.httpMethod"
    resourcePath       = "$context.resourcePath"
    status             = "$context.status"
    protocol           = "$context.protocol"
    responseLength     = "$context.responseLength"
    responseLatency    = "$context.responseLatency"
    integrationLatency = "$context.integrationLatency"
    integrationError   = "$context.integration.error"
    authorizerError    = "$context.authorizer.error"
    xrayTraceId        = "$context.xrayTraceId"
    } : {
    requestId          = "$context.requestId"
    requestTime        = "$context.requestTime"
    ip                 = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    userArn            = "$context.identity.userArn"
    httpMethod         = "$context.httpMethod"
    routeKey           = "$context.routeKey"
    status             = "$context.status"
    protocol           = "$context.protocol"
    responseLength     = "$context.responseLength"
    responseLatency    = "$context.responseLatency"
    integrationLatency = "$context.integrationLatency"
    integrationError   = "$context.integrationErrorMessage"
    authorizerError    = "$context.authorizer.error"
  }
}

moved {
  from = aws_cloudwatch_log_group.api_access
  to   = aws_cloudwatch_log_group.api_access[0]
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_338:retention is an input (log_retention_in_days)
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); CloudWatch Logs encrypts at rest by default
  count = local.access_logging ? 1 : 0

  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_permission" "api" {
  for_each = local.routes

  statement_id  = "api-${each.value.method}${replace(replace(replace(each.value.path, "/", "-"), "{", ""), "}", "")}"
  action        = "lambda:InvokeFunction"
  function_name = local.route_functions[each.value.function].name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${local.api_execution_arn}/*/${each.value.method}${replace(each.value.path, "{job_id}", "*")}"
}

################################################################################
# REST API
################################################################################

resource "aws_api_gateway_rest_api" "this" {
  count = local.is_rest ? 1 : 0

  name        = var.name
  description = "Asynchronous job API of ${var.name}."

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.authorization != "JWT"
      error_message = "authorization = JWT needs api_type = \"http\": use api_type = \"http\" with jwt_authorizer, or authorization = \"COGNITO\" with cognito_user_pool_arns for a REST API."
    }

    precondition {
      condition     = var.authorization != "COGNITO" || length(var.cognito_user_pool_arns) > 0
      error_message = "authorization = COGNITO needs cognito_user_pool_arns: set at least one user pool ARN."
    }
  }
}

resource "aws_api_gateway_resource" "jobs" {
  count = local.is_rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = aws_api_gateway_rest_api.this[0].root_resource_id
  path_part   = "jobs"
}

resource "aws_api_gateway_resource" "uploads" {
  count = local.is_rest && !var.queue_fifo ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = aws_api_gateway_resource.jobs[0].id
  path_part   = "uploads"
}

resource "aws_api_gateway_resource" "job" {
  count = local.is_rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  parent_id   = aws_api_gateway_resource.jobs[0].id
  path_part   = "{job_id}"
}

resource "aws_api_gateway_authorizer" "cognito" {
  count = local.is_rest && var.authorization == "COGNITO" ? 1 : 0

  name            = "${var.name}-cognito"
  rest_api_id     = aws_api_gateway_rest_api.this[0].id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = var.cognito_user_pool_arns
  identity_source = "method.request.header.Authorization"
}

resource "aws_api_gateway_request_validator" "this" {
  count = local.is_rest ? 1 : 0

  name                        = "${var.name}-parameters"
  rest_api_id                 = aws_api_gateway_rest_api.this[0].id
  validate_request_parameters = true
  # Bodies are validated by the submit function, which answers RFC 9457 problems.
  validate_request_body = false
}

resource "aws_api_gateway_method" "this" {
  for_each = local.is_rest ? local.routes : {}

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  resource_id = {
    jobs    = aws_api_gateway_resource.jobs[0].id
    uploads = one(aws_api_gateway_resource.uploads[*].id)
    job     = aws_api_gateway_resource.job[0].id
  }[each.value.resource]
  http_method          = each.value.method
  authorization        = local.rest_authorization
  authorizer_id        = var.authorization == "COGNITO" ? aws_api_gateway_authorizer.cognito[0].id : null
  api_key_required     = var.authorization == "API_KEY"
  request_validator_id = aws_api_gateway_request_validator.this[0].id

  request_parameters = each.value.resource == "job" ? { "method.request.path.job_id" = true } : {}
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.is_rest ? local.routes : {}

  rest_api_id             = aws_api_gateway_rest_api.this[0].id
  resource_id             = aws_api_gateway_method.this[each.key].resource_id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.route_functions[each.value.function].invoke_arn
}

resource "aws_api_gateway_deployment" "this" {
  count = local.is_rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  description = "Routes: ${join(", ", sort(keys(local.routes)))}"

  triggers = {
    redeployment = sha1(jsonencode([
      local.routes,
      var.authorization,
      var.cognito_user_pool_arns,
      aws_api_gateway_resource.jobs[0].id,
      aws_api_gateway_resource.uploads[*].id,
      aws_api_gateway_resource.job[0].id,
      [for k, m in aws_api_gateway_method.this : [k, m.id, m.authorization, m.api_key_required]],
      [for k, i in aws_api_gateway_integration.this : [k, i.id, i.uri]],
      [for k, r in aws_api_gateway_gateway_response.this : [k, r.status_code, r.response_templates, r.response_parameters]],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_method.this, aws_api_gateway_integration.this, aws_api_gateway_gateway_response.this]
}

resource "aws_api_gateway_gateway_response" "this" {
  for_each = local.is_rest ? local.gateway_responses : {}

  rest_api_id   = aws_api_gateway_rest_api.this[0].id
  response_type = each.key
  status_code   = tostring(each.value.status)

  response_parameters = {
    "gatewayresponse.header.Content-Type" = "'application/problem+json'"
  }

  # $context.error.messageString is API Gateway's message, already a quoted JSON string.
  response_templates = {
    "application/json" = "{\"type\":\"${local.problem_type_base}${replace(lower(each.value.title), " ", "-")}\",\"title\":\"${each.value.title}\",\"status\":${each.value.status},\"detail\":$context.error.messageString}"
  }
}

resource "aws_cloudwatch_log_group" "api_execution" {
  #checkov:skip=CKV_AWS_338:retention is an input (log_retention_in_days)
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); CloudWatch Logs encrypts at rest by default
  count = local.is_rest && local.execution_logging_level != "OFF" ? 1 : 0

  # The name API Gateway writes execution logs to; created here to set retention and encryption.
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this[0].id}/${var.stage_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:responses are per-job and change while jobs run; caching would serve stale job state
  #checkov:skip=CKV2_AWS_29:WAF is attached by the consumer (output api_stage_arn); a web ACL is an account-level choice
  #checkov:skip=CKV2_AWS_51:the backend is Lambda via AWS_PROXY, not an HTTP backend that could verify a client certificate
  #checkov:skip=CKV2_AWS_4:execution logging needs the account's API Gateway CloudWatch role: ERROR by default with api_gateway_cloudwatch_role = existing or create, OFF without it
  #checkov:skip=CKV_AWS_76:access logs need the account's API Gateway CloudWatch role, which a fresh account lacks; on with api_gateway_cloudwatch_role = existing or create
  count = local.is_rest ? 1 : 0

  rest_api_id          = aws_api_gateway_rest_api.this[0].id
  deployment_id        = aws_api_gateway_deployment.this[0].id
  stage_name           = var.stage_name
  xray_tracing_enabled = var.tracing_enabled

  dynamic "access_log_settings" {
    for_each = local.rest_logging ? [1] : []

    content {
      destination_arn = aws_cloudwatch_log_group.api_access[0].arn
      format          = jsonencode(local.access_log_format)
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.stage_name != "$default"
      error_message = "stage_name = \"$default\" is only valid with api_type = \"http\": choose a stage name such as \"v1\"."
    }

    precondition {
      condition     = local.rest_logging || local.execution_logging_level == "OFF"
      error_message = "api_execution_logging_level = ${local.execution_logging_level} needs API Gateway's account-level CloudWatch Logs role, which a fresh account or region does not have (AWS refuses with \"CloudWatch Logs role ARN must be set in account settings to enable logging\"): set api_gateway_cloudwatch_role = \"existing\" if the role is set in this account and region, \"create\" to let this deployment set it, or api_execution_logging_level = \"OFF\"."
    }
  }

  depends_on = [aws_api_gateway_account.this, aws_cloudwatch_log_group.api_execution]
}

resource "aws_api_gateway_method_settings" "this" {
  #checkov:skip=CKV_AWS_225:caching would serve stale job state (see the stage)
  #checkov:skip=CKV_AWS_308:caching is disabled, so there is no cache to encrypt
  count = local.is_rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this[0].id
  stage_name  = aws_api_gateway_stage.this[0].stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = local.execution_logging_level
    data_trace_enabled     = false
    caching_enabled        = false
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }
}

resource "aws_api_gateway_usage_plan" "this" {
  count = local.is_rest && var.authorization == "API_KEY" ? 1 : 0

  name = var.name

  api_stages {
    api_id = aws_api_gateway_rest_api.this[0].id
    stage  = aws_api_gateway_stage.this[0].stage_name
  }

  throttle_settings {
    burst_limit = var.throttling_burst_limit
    rate_limit  = var.throttling_rate_limit
  }

  dynamic "quota_settings" {
    for_each = var.api_key.quota_limit == null ? [] : [1]

    content {
      limit  = var.api_key.quota_limit
      period = var.api_key.quota_period
    }
  }

  tags = var.tags
}

resource "aws_api_gateway_api_key" "this" {
  count = local.is_rest && var.authorization == "API_KEY" && var.api_key.create ? 1 : 0

  name    = var.name
  enabled = true
  tags    = var.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  count = local.is_rest && var.authorization == "API_KEY" && var.api_key.create ? 1 : 0

  key_id        = aws_api_gateway_api_key.this[0].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this[0].id
}

# Account-level setting (one per region) that lets API Gateway write REST logs: only with
# api_gateway_cloudwatch_role = "create", since a second owner in the same region would
# overwrite it (and destroying either would break the other's logs).
data "aws_iam_policy_document" "api_gateway_assume" {
  count = local.is_rest && var.api_gateway_cloudwatch_role == "create" ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = local.is_rest && var.api_gateway_cloudwatch_role == "create" ? 1 : 0

  # IAM names are account-global: the region keeps two regions' roles apart (<= 61 characters).
  name                 = "${var.name}-apigw-logs-${local.region}"
  assume_role_policy   = data.aws_iam_policy_document.api_gateway_assume[0].json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = local.is_rest && var.api_gateway_cloudwatch_role == "create" ? 1 : 0

  role       = aws_iam_role.api_gateway_cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = local.is_rest && var.api_gateway_cloudwatch_role == "create" ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}

################################################################################
# HTTP API
################################################################################

resource "aws_apigatewayv2_api" "this" {
  count = local.is_http ? 1 : 0

  name          = var.name
  description   = "Asynchronous job API of ${var.name}."
  protocol_type = "HTTP"
  tags          = var.tags

  lifecycle {
    precondition {
      condition     = !contains(["COGNITO", "API_KEY"], var.authorization)
      error_message = "authorization = ${var.authorization} needs api_type = \"rest\": use api_type = \"rest\", or authorization = \"JWT\" (Cognito is a JWT issuer) with an HTTP API."
    }

    precondition {
      condition     = var.authorization != "JWT" || var.jwt_authorizer != null
      error_message = "authorization = JWT needs jwt_authorizer: set jwt_authorizer = { issuer = \"https://...\", audience = [\"...\"] }."
    }
  }
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.is_http && var.authorization == "JWT" ? 1 : 0

  api_id           = aws_apigatewayv2_api.this[0].id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_authorizer.issuer
    audience = var.jwt_authorizer.audience
  }
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = local.is_http ? local.route_functions : {}

  api_id                 = aws_apigatewayv2_api.this[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = each.value.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:authorization defaults to AWS_IAM; NONE only when the caller sets authorization = "NONE" (e.g. the local stack)
  for_each = local.is_http ? local.routes : {}

  api_id             = aws_apigatewayv2_api.this[0].id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.this[each.value.function].id}"
  authorization_type = local.http_authorization
  authorizer_id      = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

resource "aws_apigatewayv2_stage" "this" {
  count = local.is_http ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = var.stage_name
  auto_deploy = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access[0].arn
    format          = jsonencode(local.access_log_format)
  }

  default_route_settings {
    detailed_metrics_enabled = true
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
  }

  tags = var.tags

  depends_on = [aws_apigatewayv2_route.this]
}
