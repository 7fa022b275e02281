data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.function_name}"

  local_package  = var.package.filename != null
  package_exists = local.local_package ? fileexists(var.package.filename) : true
  # `make build` writes manifest.json next to the zips.
  manifest_file  = local.local_package ? "${dirname(var.package.filename)}/manifest.json" : null
  check_manifest = local.local_package && var.check_manifest ? fileexists(local.manifest_file) : false
  manifest_target = (
    local.check_manifest
    ? "${try(jsondecode(file(local.manifest_file)).runtime, var.runtime)}/${try(jsondecode(file(local.manifest_file)).architecture, var.architecture)}"
    : "${var.runtime}/${var.architecture}"
  )
}

################################################################################
# Log group
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:retention is an input (log_retention_in_days); one year is not a sensible default for job logs
  #checkov:skip=CKV_AWS_158:KMS is optional (kms_key_arn); CloudWatch Logs encrypts at rest by default
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  skip_destroy      = var.keep_log_group_on_destroy
  tags              = var.tags
}

################################################################################
# IAM role
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = coalesce(var.role_name, var.function_name)
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_json == null ? [] : [var.policy_json]

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:*"]
  }

  # X-Ray has no resource-level permissions.
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [1]

    content {
      sid = "DescribeNetworkInterfaces"
      # Describe calls have no resource-level permissions.
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [1]

    content {
      sid = "ManageNetworkInterfaces"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      # Lambda creates the interfaces before the function exists: no narrower resource.
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = var.function_name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:invoked synchronously by API Gateway or by an SQS event source mapping; the queue has its own DLQ
  #checkov:skip=CKV_AWS_117:a VPC is only needed for the in-VPC Redshift sink (vpc_config)
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile owned by the consumer; packages are reproducible zips
  #checkov:skip=CKV_AWS_115:reserved concurrency is an input; unreserved by default so a fresh account's quota can take it; the event source mapping's maximum_concurrency caps the worker
  #checkov:skip=CKV_AWS_173:environment holds no secrets; a customer key is used when kms_key_arn is set
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions == null ? -1 : var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  filename          = var.package.filename
  source_code_hash  = local.local_package && local.package_exists ? filebase64sha256(var.package.filename) : null
  s3_bucket         = var.package.s3_bucket
  s3_key            = var.package.s3_key
  s3_object_version = var.package.s3_object_version

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  # Lambda filters JSON application logs at application_log_level (and Powertools adopts it as
  # its own level); lines without a level, such as Powertools' EMF metrics, count as INFO.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = var.application_log_level
    system_log_level      = var.system_log_level
  }

  dynamic "vpc_config" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]

    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.package_exists
      error_message = "${coalesce(var.package.filename, "-")} not found: run `make build` (or set ${var.package_label})."
    }

    precondition {
      condition     = !local.check_manifest || local.manifest_target == "${var.runtime}/${var.architecture}"
      error_message = "${var.package_label} was built for ${local.manifest_target} but runtime = ${var.runtime}, architecture = ${var.architecture}: run `make build RUNTIME=${var.runtime} ARCH=${var.architecture}` (or change runtime/architecture)."
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
