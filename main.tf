data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  platform     = jsondecode(file("${path.module}/functions/platform.json"))
  runtime      = coalesce(var.runtime, local.platform.runtime)
  architecture = coalesce(var.architecture, local.platform.architecture)

  # The contract shared with the functions and the client (routes, settings, environments):
  # a setting left null takes the contract's default; variables.tf validates against its bounds.
  contract = jsondecode(file("${path.module}/functions/shared/async_jobs/contract.json"))
  settings = {
    max_records_per_job       = coalesce(var.max_records_per_job, local.contract.settings.max_records_per_job.default)
    max_body_bytes            = coalesce(var.max_body_bytes, local.contract.settings.max_body_bytes.default)
    upload_url_ttl_seconds    = coalesce(var.upload_url_ttl_seconds, local.contract.settings.upload_url_ttl_seconds.default)
    max_upload_bytes          = coalesce(var.max_upload_bytes, local.contract.settings.max_upload_bytes.default)
    errors_url_ttl_seconds    = coalesce(var.errors_url_ttl_seconds, local.contract.settings.errors_url_ttl_seconds.default)
    retry_after_seconds       = coalesce(var.retry_after_seconds, local.contract.settings.retry_after_seconds.default)
    chunk_size                = coalesce(var.chunk_size, local.contract.settings.chunk_size.default)
    tolerated_failure_percent = coalesce(var.tolerated_failure_percent, local.contract.settings.tolerated_failure_percent.default)
    max_receive_count         = coalesce(var.max_receive_count, local.contract.settings.max_receive_count.default)
    callback_max_attempts     = coalesce(var.callbacks.max_attempts, local.contract.settings.callback_max_attempts.default)
    callback_timeout_seconds  = coalesce(var.callbacks.timeout_seconds, local.contract.settings.callback_timeout_seconds.default)
  }

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Names and ARNs are built from inputs so policies are known at plan time (and reviewable).
  state_bucket_name = coalesce(var.state_bucket_name, "${var.name}-${local.account_id}-${local.region}")
  state_bucket_arn  = "arn:${local.partition}:s3:::${local.state_bucket_name}"
  queue_suffix      = var.queue_fifo ? ".fifo" : ""
  queue_name        = "${var.name}-jobs${local.queue_suffix}"
  queue_arn         = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.queue_name}"
  queue_url         = "https://sqs.${local.region}.${data.aws_partition.current.dns_suffix}/${local.account_id}/${local.queue_name}"
  dlq_name          = "${var.name}-dlq${local.queue_suffix}"
  dlq_arn           = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.dlq_name}"

  # AWS: visibility timeout >= 6 x function timeout + maximum batching window.
  # the worker's batching window: 1 s on a standard queue unless set, 0 on FIFO (no window there)
  batching_window        = var.worker_maximum_batching_window_in_seconds != null ? var.worker_maximum_batching_window_in_seconds : (var.queue_fifo ? 0 : 1)
  min_visibility_timeout = 6 * var.worker.timeout + local.batching_window
  visibility_timeout     = coalesce(var.queue_visibility_timeout_seconds, local.min_visibility_timeout)

  record_schema_key = "config/record-schema.json"

  packages = {
    for fn in ["submit", "worker", "status"] : fn => (
      var.packages[fn].filename == null && var.packages[fn].s3_bucket == null
      ? merge(var.packages[fn], { filename = "${path.module}/dist/${fn}.zip" })
      : var.packages[fn]
    )
  }

  redshift = contains(["redshift_data", "redshift"], var.sink.type) ? var.sink.redshift : null
  postgres = var.sink.type == "postgres" ? var.sink.postgres : null
  # statement_timeout of a chunk's transaction: over before Lambda stops the worker
  postgres_timeout_seconds = try(coalesce(local.postgres.statement_timeout_seconds, max(1, var.worker.timeout - 30)), null)

  # The worker waits this long for a Redshift statement, then cancels it: it must give up
  # before Lambda stops the worker (worker.timeout), or the statement outlives the chunk.
  redshift_timeout_seconds = try(coalesce(local.redshift.statement_timeout_seconds, max(1, var.worker.timeout - 30)), null)

  # Each function gets exactly the variables its parser declares (the contract's environment
  # groups, read by functions/shared/async_jobs/config.py; tests/plan/test_plan_environment.py
  # holds the two together).
  common_environment = {
    STATE_BUCKET                       = local.state_bucket_name
    POWERTOOLS_SERVICE_NAME            = var.name
    POWERTOOLS_METRICS_NAMESPACE       = var.metrics_namespace
    POWERTOOLS_LOG_LEVEL               = var.log_level
    POWERTOOLS_TRACE_DISABLED          = tostring(!var.tracing_enabled)
    POWERTOOLS_TRACER_CAPTURE_RESPONSE = "false"
  }

  queue_environment = {
    QUEUE_URL  = local.queue_url
    QUEUE_FIFO = tostring(var.queue_fifo)
  }

  api_environment = {
    API_TYPE            = var.api_type
    AUTHORIZATION       = var.authorization
    RETRY_AFTER_SECONDS = tostring(local.settings.retry_after_seconds)
  }

  submit_environment = merge(var.submit.environment, local.common_environment, local.queue_environment, local.api_environment, local.notify_api_environment, {
    MAX_RECORDS_PER_JOB    = tostring(local.settings.max_records_per_job)
    MAX_BODY_BYTES         = tostring(local.settings.max_body_bytes)
    UPLOAD_URL_TTL_SECONDS = tostring(local.settings.upload_url_ttl_seconds)
    MAX_UPLOAD_BYTES       = tostring(local.settings.max_upload_bytes)
  })

  status_environment = merge(var.status.environment, local.common_environment, local.api_environment, {
    ERRORS_URL_TTL_SECONDS = tostring(local.settings.errors_url_ttl_seconds)
  })

  # IAM names are account-global; the same deployment name in two regions must not collide.
  # name <= 31 + "-submit-" + the longest region name (14) stays under IAM's 64 characters.
  role_names = { for fn in ["submit", "worker", "status"] : fn => "${var.name}-${fn}-${local.region}" }
  # the roles' ARNs from their names (the function module creates them at path /): known at plan
  role_arns = { for fn, role in local.role_names : fn => "arn:${local.partition}:iam::${local.account_id}:role/${role}" }

  # With log_format JSON, Lambda filters application logs at application_log_level, and
  # Powertools adopts that level over POWERTOOLS_LOG_LEVEL (log_level allows DEBUG and INFO
  # only, since the EMF metric lines count as INFO).
  application_log_level = var.log_level

  worker_environment = merge(
    var.worker.environment,
    local.common_environment,
    local.queue_environment,
    local.notify_worker_environment,
    {
      CHUNK_SIZE                = tostring(local.settings.chunk_size)
      TOLERATED_FAILURE_PERCENT = tostring(local.settings.tolerated_failure_percent)
      MAX_RECEIVE_COUNT         = tostring(local.settings.max_receive_count)
      # the errors link of the job resource in completion events and callbacks
      ERRORS_URL_TTL_SECONDS = tostring(local.settings.errors_url_ttl_seconds)
      SINK                   = var.sink.type
    },
    var.record_schema == null ? {} : { RECORD_SCHEMA_KEY = local.record_schema_key },
    var.record_processor == null ? {} : { RECORD_PROCESSOR = var.record_processor },
    var.dead_letter_accounting_enabled ? { DEAD_LETTER_QUEUE_ARN = local.dlq_arn } : {},
    local.redshift == null ? {} : {
      for k, v in merge(
        {
          REDSHIFT_TABLE           = local.redshift.table
          REDSHIFT_SCHEMA          = local.redshift.schema
          REDSHIFT_DATABASE        = local.redshift.database
          REDSHIFT_DB_USER         = local.redshift.db_user
          REDSHIFT_SECRET_ARN      = local.redshift.secret_arn
          REDSHIFT_COPY_ROLE_ARN   = local.redshift.copy_role_arn
          REDSHIFT_TIMEOUT_SECONDS = tostring(local.redshift_timeout_seconds)
        },
        # the Data API addresses a cluster or a workgroup by name, the connector a host and port
        var.sink.type == "redshift_data" ? tomap({
          REDSHIFT_CLUSTER_IDENTIFIER = local.redshift.cluster_identifier
          REDSHIFT_WORKGROUP_NAME     = local.redshift.workgroup_name
          }) : tomap({
          REDSHIFT_HOST = local.redshift.host
          REDSHIFT_PORT = tostring(local.redshift.port)
        }),
      ) : k => v if v != null
    },
    local.postgres == null ? {} : {
      for k, v in {
        POSTGRES_HOST            = local.postgres.host
        POSTGRES_PORT            = tostring(local.postgres.port)
        POSTGRES_DATABASE        = local.postgres.database
        POSTGRES_USER            = local.postgres.user
        POSTGRES_TABLE           = local.postgres.table
        POSTGRES_SCHEMA          = local.postgres.schema
        POSTGRES_AUTH            = local.postgres.auth
        POSTGRES_SECRET_ARN      = local.postgres.secret_arn
        POSTGRES_SSLMODE         = local.postgres.sslmode
        POSTGRES_SSLROOTCERT     = local.postgres.sslrootcert
        POSTGRES_TIMEOUT_SECONDS = tostring(local.postgres_timeout_seconds)
      } : k => v if v != null
    },
  )
}

################################################################################
# State bucket
################################################################################

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:server access logging needs a separate log bucket owned by the consumer; CloudTrail data events cover audit
  #checkov:skip=CKV_AWS_144:job state is short-lived working data (expires after job_expiration_days); replication is the consumer's choice
  #checkov:skip=CKV_AWS_145:SSE-S3 by default; SSE-KMS with kms_key_arn
  #checkov:skip=CKV2_AWS_62:event notifications are configured (aws_s3_bucket_notification.uploads) for standard queues
  bucket        = local.state_bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-jobs"
    status = "Enabled"

    filter {
      prefix = "jobs/"
    }

    expiration {
      days = var.job_expiration_days
    }
  }

  # A job's GET /jobs index entry expires with the job (a listing skips an entry whose job is
  # gone, but would still read it).
  rule {
    id     = "expire-job-index"
    status = "Enabled"

    filter {
      prefix = "index/"
    }

    expiration {
      days = var.job_expiration_days
    }
  }

  rule {
    id     = "expire-idempotency-keys"
    status = "Enabled"

    filter {
      prefix = "idempotency/"
    }

    expiration {
      days = var.idempotency_expiration_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.state_bucket_arn, "${local.state_bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_s3_object" "record_schema" {
  #checkov:skip=CKV_AWS_186:encrypted by the bucket default (SSE-S3, or SSE-KMS with kms_key_arn)
  count = var.record_schema == null ? 0 : 1

  bucket       = aws_s3_bucket.state.id
  key          = local.record_schema_key
  content      = var.record_schema
  content_type = "application/schema+json"
  kms_key_id   = var.kms_key_arn
  # S3 objects take at most 10 tags, the provider's default tags included: the object is
  # untagged here (the bucket carries var.tags) and default tags must fit.
  tags = {}

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.state]

  lifecycle {
    precondition {
      condition     = length(data.aws_default_tags.current.tags) <= 10
      error_message = "The provider's default_tags has ${length(data.aws_default_tags.current.tags)} tags; S3 objects take at most 10, and the record schema object (record_schema) gets them all: keep default_tags to 10 or fewer."
    }
  }
}

data "aws_default_tags" "current" {}

# Uploaded inputs start their job: S3 -> queue. S3 cannot notify FIFO queues.
resource "aws_s3_bucket_notification" "uploads" {
  count = var.queue_fifo ? 0 : 1

  bucket = aws_s3_bucket.state.id

  queue {
    id            = "job-uploads"
    queue_arn     = aws_sqs_queue.this.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "jobs/"
    filter_suffix = "upload.ndjson"
  }

  depends_on = [aws_sqs_queue_policy.this]
}

################################################################################
# Queues
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                        = local.dlq_name
  fifo_queue                  = var.queue_fifo ? true : null
  content_based_deduplication = var.queue_fifo ? false : null
  message_retention_seconds   = 1209600
  # Lambda refuses a mapping on a queue whose visibility timeout is below the function's
  # timeout; the work queue's keeps a dead letter from being received twice meanwhile.
  visibility_timeout_seconds = local.visibility_timeout
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  tags                       = var.tags
}

resource "aws_sqs_queue" "this" {
  name                        = local.queue_name
  fifo_queue                  = var.queue_fifo ? true : null
  content_based_deduplication = var.queue_fifo ? false : null
  visibility_timeout_seconds  = local.visibility_timeout
  message_retention_seconds   = var.queue_message_retention_seconds
  sqs_managed_sse_enabled     = var.kms_key_arn == null ? true : null
  kms_master_key_id           = var.kms_key_arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = local.dlq_arn
    maxReceiveCount     = local.settings.max_receive_count
  })

  tags = var.tags

  depends_on = [aws_sqs_queue.dlq]

  lifecycle {
    precondition {
      condition     = local.visibility_timeout >= local.min_visibility_timeout
      error_message = "queue_visibility_timeout_seconds (${local.visibility_timeout}) must be >= 6 x worker timeout (${var.worker.timeout}) + batching window (${local.batching_window}) = ${local.min_visibility_timeout}: raise it (or set it to null to compute it) or lower worker.timeout."
    }
  }
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count = var.dlq_redrive_allow_policy_enabled ? 1 : 0

  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  })
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = { this = local.queue_arn, dlq = local.dlq_arn }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

data "aws_iam_policy_document" "queue" {
  source_policy_documents = [data.aws_iam_policy_document.queue_tls_only["this"].json]

  dynamic "statement" {
    for_each = var.queue_fifo ? [] : [1]

    content {
      sid       = "AllowStateBucketNotifications"
      actions   = ["sqs:SendMessage"]
      resources = [local.queue_arn]

      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.state_bucket_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  # Only the module's own senders: the submit and worker roles, S3 for the state bucket (the
  # statement above), and queue_additional_senders. Every other principal of the account is
  # refused even when its identity policy allows sqs:SendMessage: a forged message could start
  # or steer a job's processing. aws:PrincipalArn is absent from S3's service request and
  # aws:SourceArn from every identity's own, so each sender fails one of the two conditions.
  statement {
    sid       = "DenyOtherSenders"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [local.queue_arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = concat([for fn in ["submit", "worker"] : local.role_arns[fn]], var.queue_additional_senders)
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:SourceArn"
      values   = [local.state_bucket_arn]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

# The dead letters are the same jobs' messages: TLS only, as on the work queue.
resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.queue_tls_only["dlq"].json
}

################################################################################
# Functions
################################################################################

module "submit" {
  source = "./modules/function"

  function_name                  = "${var.name}-submit"
  description                    = "Accepts, cancels and prepares uploads of ${var.name} jobs."
  handler                        = "submit.handler"
  runtime                        = local.runtime
  architecture                   = local.architecture
  memory_size                    = var.submit.memory_size
  timeout                        = var.submit.timeout
  reserved_concurrent_executions = var.submit.reserved_concurrent_executions
  environment                    = local.submit_environment
  tracing_mode                   = var.tracing_enabled ? "Active" : "PassThrough"
  application_log_level          = local.application_log_level
  system_log_level               = var.system_log_level

  package       = local.packages.submit
  package_label = "packages.submit"

  role_name                 = local.role_names.submit
  policy_json               = data.aws_iam_policy_document.submit.json
  permissions_boundary      = var.permissions_boundary
  log_retention_in_days     = var.log_retention_in_days
  keep_log_group_on_destroy = var.keep_log_groups_on_destroy
  kms_key_arn               = var.kms_key_arn
  tags                      = var.tags
}

module "worker" {
  source = "./modules/function"

  function_name                  = "${var.name}-worker"
  description                    = "Splits ${var.name} jobs into chunks and processes them."
  handler                        = "worker.handler"
  runtime                        = local.runtime
  architecture                   = local.architecture
  memory_size                    = var.worker.memory_size
  timeout                        = var.worker.timeout
  reserved_concurrent_executions = var.worker.reserved_concurrent_executions
  environment                    = local.worker_environment
  tracing_mode                   = var.tracing_enabled ? "Active" : "PassThrough"
  application_log_level          = local.application_log_level
  system_log_level               = var.system_log_level
  vpc_config                     = var.vpc_config

  package       = local.packages.worker
  package_label = "packages.worker"

  role_name                 = local.role_names.worker
  policy_json               = data.aws_iam_policy_document.worker.json
  permissions_boundary      = var.permissions_boundary
  log_retention_in_days     = var.log_retention_in_days
  keep_log_group_on_destroy = var.keep_log_groups_on_destroy
  kms_key_arn               = var.kms_key_arn
  tags                      = var.tags
}

module "status" {
  source = "./modules/function"

  function_name                  = "${var.name}-status"
  description                    = "Reports the state of ${var.name} jobs."
  handler                        = "status.handler"
  runtime                        = local.runtime
  architecture                   = local.architecture
  memory_size                    = var.status.memory_size
  timeout                        = var.status.timeout
  reserved_concurrent_executions = var.status.reserved_concurrent_executions
  environment                    = local.status_environment
  tracing_mode                   = var.tracing_enabled ? "Active" : "PassThrough"
  application_log_level          = local.application_log_level
  system_log_level               = var.system_log_level

  package       = local.packages.status
  package_label = "packages.status"

  role_name                 = local.role_names.status
  policy_json               = data.aws_iam_policy_document.status.json
  permissions_boundary      = var.permissions_boundary
  log_retention_in_days     = var.log_retention_in_days
  keep_log_group_on_destroy = var.keep_log_groups_on_destroy
  kms_key_arn               = var.kms_key_arn
  tags                      = var.tags
}

################################################################################
# Worker event source mapping
################################################################################

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn                   = aws_sqs_queue.this.arn
  function_name                      = module.worker.function_arn
  enabled                            = var.worker_event_source_enabled
  batch_size                         = var.worker_batch_size
  maximum_batching_window_in_seconds = local.batching_window
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.worker_maximum_concurrency
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.worker.reserved_concurrent_executions == null || var.worker_maximum_concurrency <= coalesce(var.worker.reserved_concurrent_executions, var.worker_maximum_concurrency)
      error_message = "worker_maximum_concurrency (${var.worker_maximum_concurrency}) must be <= worker.reserved_concurrent_executions (${coalesce(var.worker.reserved_concurrent_executions, -1)}), or the worker is throttled and messages age into the DLQ: lower worker_maximum_concurrency or raise worker.reserved_concurrent_executions."
    }

    precondition {
      condition     = local.redshift_timeout_seconds == null || coalesce(local.redshift_timeout_seconds, 0) + 10 <= var.worker.timeout
      error_message = "sink.redshift.statement_timeout_seconds (${coalesce(local.redshift_timeout_seconds, 0)}) must end at least 10 s before worker.timeout (${var.worker.timeout}), so the worker can cancel the statement and record the chunk before Lambda stops it: lower statement_timeout_seconds (or leave it null) or raise worker.timeout."
    }

    precondition {
      condition     = local.postgres_timeout_seconds == null || coalesce(local.postgres_timeout_seconds, 0) + 10 <= var.worker.timeout
      error_message = "sink.postgres.statement_timeout_seconds (${coalesce(local.postgres_timeout_seconds, 0)}) must end at least 10 s before worker.timeout (${var.worker.timeout}), so the server cancels a chunk's transaction before Lambda stops the worker: lower statement_timeout_seconds (or leave it null) or raise worker.timeout."
    }

    precondition {
      condition     = !var.queue_fifo || var.worker_batch_size <= 10
      error_message = "worker_batch_size (${var.worker_batch_size}) must be <= 10 with a FIFO queue (queue_fifo = true): lower worker_batch_size or use a standard queue."
    }

    precondition {
      condition     = !var.queue_fifo || local.batching_window == 0
      error_message = "worker_maximum_batching_window_in_seconds (${local.batching_window}) must be 0 with a FIFO queue (queue_fifo = true): set it to 0 or use a standard queue."
    }

    precondition {
      condition     = var.queue_fifo || var.worker_batch_size <= 10 || local.batching_window >= 1
      error_message = "worker_batch_size (${var.worker_batch_size}) above 10 needs worker_maximum_batching_window_in_seconds >= 1: set a batching window or lower worker_batch_size."
    }
  }
}

# The DLQ feeds the same worker: it tells the two sources apart by eventSourceARN and records
# each dead-lettered message in its job (DEAD_LETTER_QUEUE_ARN), so a job ends even when Lambda
# killed the worker on a message's last receive.
resource "aws_lambda_event_source_mapping" "worker_dead_letters" {
  count = var.dead_letter_accounting_enabled ? 1 : 0

  event_source_arn        = aws_sqs_queue.dlq.arn
  function_name           = module.worker.function_arn
  enabled                 = var.worker_event_source_enabled
  batch_size              = var.dead_letter_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 2 # the smallest Lambda allows: dead letters are few
  }

  tags = var.tags
}
