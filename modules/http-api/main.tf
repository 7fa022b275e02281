locals {
  route_authorization = {
    AWS_IAM = "AWS_IAM"
    JWT     = "JWT"
    NONE    = "NONE"
    COGNITO = "NONE"
    API_KEY = "NONE"
  }[var.authorization]

  access_log_format = {
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

################################################################################
# API
################################################################################

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = var.description
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
  count = var.authorization == "JWT" ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_authorizer.issuer
    audience = var.jwt_authorizer.audience
  }
}

################################################################################
# Routes
################################################################################

resource "aws_apigatewayv2_integration" "this" {
  for_each = var.functions

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = each.value.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:authorization defaults to AWS_IAM; NONE only when the caller sets authorization = "NONE" (e.g. the local stack)
  for_each = var.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.this[each.value.function].id}"
  authorization_type = local.route_authorization
  authorizer_id      = var.authorization == "JWT" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

################################################################################
# Stage
################################################################################

# HTTP APIs deliver access logs without API Gateway's account-level CloudWatch role.
resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = var.stage_name
  auto_deploy = true

  access_log_settings {
    destination_arn = var.access_log_destination_arn
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
