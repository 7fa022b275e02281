data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name

  # Route authorization -> REST method authorization. JWT is refused by a precondition.
  method_authorization = {
    AWS_IAM = "AWS_IAM"
    COGNITO = "COGNITO_USER_POOLS"
    API_KEY = "NONE"
    NONE    = "NONE"
    JWT     = "NONE"
  }[var.authorization]

  # REST logs (access and execution) need the account's API Gateway CloudWatch role.
  logging                 = var.cloudwatch_role != "none"
  execution_logging_level = coalesce(var.execution_logging_level, local.logging ? "ERROR" : "OFF")

  access_log_format = {
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
  }

  # API Gateway's own errors as RFC 9457 problems, shaped like the functions' (type = base +
  # slug of the title). Every response type is listed with its documented status, so the two
  # defaults only catch types AWS may add later.
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

  has_uploads = anytrue([for r in values(var.routes) : r.resource == "uploads"])
}

################################################################################
# API and resources
################################################################################

resource "aws_api_gateway_rest_api" "this" {
  name        = var.name
  description = var.description

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
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "jobs"
}

resource "aws_api_gateway_resource" "uploads" {
  count = local.has_uploads ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.jobs.id
  path_part   = "uploads"
}

resource "aws_api_gateway_resource" "job" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.jobs.id
  path_part   = "{job_id}"
}

resource "aws_api_gateway_resource" "retry" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.job.id
  path_part   = "retry"
}

################################################################################
# Methods
################################################################################

resource "aws_api_gateway_authorizer" "cognito" {
  count = var.authorization == "COGNITO" ? 1 : 0

  name            = "${var.name}-cognito"
  rest_api_id     = aws_api_gateway_rest_api.this.id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = var.cognito_user_pool_arns
  identity_source = "method.request.header.Authorization"
}

resource "aws_api_gateway_request_validator" "this" {
  name                        = "${var.name}-parameters"
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  validate_request_parameters = true
  # Bodies are validated by the submit function, which answers RFC 9457 problems.
  validate_request_body = false
}

resource "aws_api_gateway_method" "this" {
  for_each = var.routes

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = {
    jobs    = aws_api_gateway_resource.jobs.id
    uploads = one(aws_api_gateway_resource.uploads[*].id)
    job     = aws_api_gateway_resource.job.id
    retry   = aws_api_gateway_resource.retry.id
  }[each.value.resource]
  http_method          = each.value.method
  authorization        = local.method_authorization
  authorizer_id        = var.authorization == "COGNITO" ? aws_api_gateway_authorizer.cognito[0].id : null
  api_key_required     = var.authorization == "API_KEY"
  request_validator_id = aws_api_gateway_request_validator.this.id

  request_parameters = contains(["job", "retry"], each.value.resource) ? { "method.request.path.job_id" = true } : {}
}

resource "aws_api_gateway_integration" "this" {
  for_each = var.routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_method.this[each.key].resource_id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.functions[each.value.function].invoke_arn
}

resource "aws_api_gateway_gateway_response" "this" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = tostring(each.value.status)

  response_parameters = {
    "gatewayresponse.header.Content-Type" = "'application/problem+json'"
  }

  # $context.error.messageString is API Gateway's message, already a quoted JSON string.
  response_templates = {
    "application/json" = "{\"type\":\"${var.problem_type_base}${replace(lower(each.value.title), " ", "-")}\",\"title\":\"${each.value.title}\",\"status\":${each.value.status},\"detail\":$context.error.messageString}"
  }
}

################################################################################
# Deployment and stage
################################################################################

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Routes: ${join(", ", sort(keys(var.routes)))}"

  triggers = {
    redeployment = sha1(jsonencode([
      var.routes,
      var.authorization,
      var.cognito_user_pool_arns,
      aws_api_gateway_resource.jobs.id,
      aws_api_gateway_resource.uploads[*].id,
      aws_api_gateway_resource.job.id,
      aws_api_gateway_resource.retry.id,
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

resource "aws_cloudwatch_log_group" "execution" {
  #checkov:skip=CKV_AWS_338:retention is an input (log_retention_in_days)
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); CloudWatch Logs encrypts at rest by default
  count = local.execution_logging_level != "OFF" ? 1 : 0

  # The name API Gateway writes execution logs to; created here to set retention and encryption.
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  skip_destroy      = var.keep_log_groups_on_destroy
  tags              = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:responses are per-job and change while jobs run; caching would serve stale job state
  #checkov:skip=CKV2_AWS_29:WAF is attached by the consumer (output api_stage_arn); a web ACL is an account-level choice
  #checkov:skip=CKV2_AWS_51:the backend is Lambda via AWS_PROXY, not an HTTP backend that could verify a client certificate
  #checkov:skip=CKV2_AWS_4:execution logging needs the account's API Gateway CloudWatch role: ERROR by default with api_gateway_cloudwatch_role = existing or create, OFF without it
  #checkov:skip=CKV_AWS_76:access logs need the account's API Gateway CloudWatch role, which a fresh account lacks; on with cloudwatch_role = existing or create
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = var.tracing_enabled

  dynamic "access_log_settings" {
    for_each = local.logging ? [1] : []

    content {
      destination_arn = var.access_log_destination_arn
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
      condition     = local.logging || local.execution_logging_level == "OFF"
      error_message = "api_execution_logging_level = ${local.execution_logging_level} needs API Gateway's account-level CloudWatch Logs role, which a fresh account or region does not have (AWS refuses with \"CloudWatch Logs role ARN must be set in account settings to enable logging\"): set api_gateway_cloudwatch_role = \"existing\" if the role is set in this account and region, \"create\" to let this deployment set it, or api_execution_logging_level = \"OFF\"."
    }

    precondition {
      condition     = !local.logging || var.access_log_destination_arn != null
      error_message = "access_log_destination_arn must be set when cloudwatch_role is existing or create (REST access logs are on then)."
    }
  }

  depends_on = [aws_api_gateway_account.this, aws_cloudwatch_log_group.execution]
}

resource "aws_api_gateway_method_settings" "this" {
  #checkov:skip=CKV_AWS_225:caching would serve stale job state (see the stage)
  #checkov:skip=CKV_AWS_308:caching is disabled, so there is no cache to encrypt
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
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

################################################################################
# API keys (authorization = API_KEY)
################################################################################

resource "aws_api_gateway_usage_plan" "this" {
  count = var.authorization == "API_KEY" ? 1 : 0

  name = var.name

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
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
  count = var.authorization == "API_KEY" && var.api_key.create ? 1 : 0

  name    = var.name
  enabled = true
  tags    = var.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  count = var.authorization == "API_KEY" && var.api_key.create ? 1 : 0

  key_id        = aws_api_gateway_api_key.this[0].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this[0].id
}

################################################################################
# Account CloudWatch role (cloudwatch_role = "create")
################################################################################

# Account-level setting (one per region) that lets API Gateway write REST logs: only with
# cloudwatch_role = "create", since a second owner in the same region would overwrite it (and
# destroying either would break the other's logs).
data "aws_iam_policy_document" "cloudwatch_assume" {
  count = var.cloudwatch_role == "create" ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.cloudwatch_role == "create" ? 1 : 0

  # IAM names are account-global: the region keeps two regions' roles apart (<= 61 characters).
  name                 = "${var.name}-apigw-logs-${local.region}"
  assume_role_policy   = data.aws_iam_policy_document.cloudwatch_assume[0].json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  count = var.cloudwatch_role == "create" ? 1 : 0

  role       = aws_iam_role.cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.cloudwatch_role == "create" ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn
  # Destroy clears the region's setting: left pointing at the deleted role, every REST API in
  # the region would lose its logs (and stage logging updates would fail) until someone sets
  # another role. (Provider 6 always resets and drops this argument.)
  reset_on_delete = true

  depends_on = [aws_iam_role_policy_attachment.cloudwatch]
}
