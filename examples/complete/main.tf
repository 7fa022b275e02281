provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  tags = {
    Project     = var.name
    Environment = "example"
  }
}

################################################################################
# Customer managed key for bucket, queues, logs, topic and function environment
################################################################################

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:a key policy's resource is the key itself; the account root statement is the standard delegation to IAM
  #checkov:skip=CKV_AWS_111:a key policy's resource is the key itself
  #checkov:skip=CKV_AWS_356:a key policy's resource is the key itself
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  # S3 event notifications to the encrypted queue, CloudWatch alarms to the encrypted topic.
  statement {
    sid       = "ServiceProducers"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com", "cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.name}: job data, queues, logs and alarms"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json
  tags                = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Alarm topic and Cognito user pool owned by the caller
################################################################################

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cognito_user_pool" "this" {
  name              = var.name
  mfa_configuration = "OPTIONAL"
  # ACTIVE in production; INACTIVE here so that `terraform destroy` of the example works.
  deletion_protection = "INACTIVE"

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length    = 14
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = true
  }

  tags = local.tags
}

################################################################################
# The module, with every option set
################################################################################

module "async_jobs" {
  source = "../../"

  name                  = var.name
  tags                  = local.tags
  kms_key_arn           = aws_kms_key.this.arn
  log_retention_in_days = 90

  # Functions
  runtime      = "python3.13"
  architecture = "arm64"
  submit = {
    memory_size                    = 512
    timeout                        = 20
    reserved_concurrent_executions = 50
    environment                    = { EXAMPLE = "submit" }
  }
  worker = {
    memory_size                    = 1024
    timeout                        = 60
    reserved_concurrent_executions = 20
  }
  status = {
    memory_size                    = 256
    timeout                        = 5
    reserved_concurrent_executions = 50
  }
  tracing_enabled   = true
  log_level         = "DEBUG"
  system_log_level  = "WARN"
  metrics_namespace = "AsyncJobsComplete"
  # Left unset, each for a reason:
  # - previous_kms_key_arns: no earlier key to keep readable (list old keys here after changing
  #   kms_key_arn, until nothing they encrypted is left);
  # - keep_log_groups_on_destroy: an example is destroyed whole, its logs with it;
  # - packages: the zips `make build` writes into the module's dist/ (the default);
  # - permissions_boundary: the boundary policy is the account's own (set its ARN when one applies);
  # - vpc_config: the s3 sink needs no VPC (examples/postgres runs the worker in one).

  # Jobs
  max_records_per_job       = 1000000
  max_body_bytes            = 3000000
  upload_url_ttl_seconds    = 3600
  max_upload_bytes          = 2147483648
  errors_url_ttl_seconds    = 1800
  retry_after_seconds       = 10
  chunk_size                = 1000
  tolerated_failure_percent = 1
  # functions/worker/record_processors.py (shipped in the worker zip): trims and lowercases the
  # email and stores its domain apart; a record it refuses is failed and listed in the errors
  record_processor = "record_processors:normalize_contact"
  record_schema = jsonencode({
    "$schema"  = "https://json-schema.org/draft/2020-12/schema"
    type       = "object"
    required   = ["id", "email"]
    properties = { id = { type = "string" }, email = { type = "string", format = "email" } }
  })
  sink = { type = "s3" }

  # State bucket (state_bucket_name left unset: the default <name>-<account id>-<region> is
  # unique per account and region)
  force_destroy                      = true
  job_expiration_days                = 14
  idempotency_expiration_days        = 2
  noncurrent_version_expiration_days = 3

  # Queue: standard, because uploads need S3 event notifications
  queue_fifo                       = false
  queue_visibility_timeout_seconds = 400
  queue_message_retention_seconds  = 604800
  max_receive_count                = 3
  dlq_redrive_allow_policy_enabled = true
  # queue_additional_senders left unset: only the module's own roles and S3 send to the queue;
  # name an operator role here if it redrives the DLQ with start-message-move-task

  # Worker event source mapping
  worker_batch_size                         = 5
  worker_maximum_batching_window_in_seconds = 1
  worker_maximum_concurrency                = 10
  worker_event_source_enabled               = true
  dead_letter_accounting_enabled            = true
  dead_letter_batch_size                    = 5

  # API: REST with a Cognito user pool authorizer
  api_type                    = "rest"
  authorization               = "COGNITO"
  cognito_user_pool_arns      = [aws_cognito_user_pool.this.arn]
  stage_name                  = "prod"
  throttling_burst_limit      = 200
  throttling_rate_limit       = 100
  api_execution_logging_level = "INFO"
  # REST logs need the account's API Gateway CloudWatch role; this example sets it.
  api_gateway_cloudwatch_role = "create"
  # jwt_authorizer (api_type = "http", authorization = "JWT") and api_key (authorization =
  # "API_KEY") belong to the other authorizations: unset with COGNITO.

  # Alarms (alarm_topic_encryption left unset: it encrypts the topic the module creates, and
  # this example passes its own, encrypted with the key above)
  create_alarms        = true
  alarm_sns_topic_arns = [aws_sns_topic.alarms.arn]
  alarm_period_seconds = 60
  alarm_thresholds = {
    queue_oldest_message_age_seconds = 600
    api_latency_p95_ms               = 1000
    worker_errors                    = 5
    jobs_failed                      = 0
    worker_duration_timeout_ratio    = 0.7
  }

  # Completion events on the account's default bus, under this deployment's own source
  events = {
    enabled = true
    source  = var.name
  }
  # callbacks left unset: no host is allowed by default, so every Callback-Url is refused; list
  # your receivers' hosts in callbacks.allowed_hosts to accept them
}
