################################################################################
# Function permissions (logs, X-Ray and VPC come from modules/function)
################################################################################

locals {
  jobs_objects        = "${local.state_bucket_arn}/jobs/*"
  idempotency_objects = "${local.state_bucket_arn}/idempotency/*"
  config_objects      = "${local.state_bucket_arn}/config/*"
  # the owner-scoped job index GET /jobs lists (written by submit, listed by status)
  index_objects = "${local.state_bucket_arn}/index/*"

  redshift_data          = var.sink.type == "redshift_data"
  redshift_cluster       = try(local.redshift.cluster_identifier, null)
  redshift_workgroup     = try(local.redshift.workgroup_name, null)
  redshift_secret        = try(local.redshift.secret_arn, null)
  redshift_cluster_arn   = local.redshift_cluster == null ? null : "arn:${local.partition}:redshift:${local.region}:${local.account_id}:cluster:${local.redshift_cluster}"
  redshift_workgroup_arn = local.redshift_workgroup == null ? null : "arn:${local.partition}:redshift-serverless:${local.region}:${local.account_id}:workgroup/*"
  postgres_iam_auth      = try(local.postgres.auth == "iam", false)
  postgres_secret        = try(local.postgres.secret_arn, null)
}

# Every function reads keys that may not exist yet. Without s3:ListBucket, S3 answers 403
# instead of 404 for a missing key; the engine needs the 404 to tell "no such job / marker /
# idempotency key" from a denied request. Scoped by s3:prefix to the prefixes each function
# reads, so no role can list another part of the bucket.
data "aws_iam_policy_document" "missing_keys_answer_404" {
  for_each = {
    submit = ["jobs/*", "idempotency/*"]
    status = ["jobs/*", "index/*"]
    worker = ["jobs/*", "config/*"]
  }

  statement {
    sid       = "MissingKeysAnswer404"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = each.value
    }
  }
}

data "aws_iam_policy_document" "submit" {
  source_policy_documents = [data.aws_iam_policy_document.missing_keys_answer_404["submit"].json]

  statement {
    sid       = "JobsAndIdempotencyObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.jobs_objects, local.idempotency_objects, local.index_objects]
  }

  statement {
    sid       = "SendToQueue"
    actions   = ["sqs:SendMessage"]
    resources = [local.queue_arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]

    content {
      sid       = "UseKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

data "aws_iam_policy_document" "status" {
  source_policy_documents = [data.aws_iam_policy_document.missing_keys_answer_404["status"].json]

  statement {
    sid       = "ReadJobState"
    actions   = ["s3:GetObject"]
    resources = [local.jobs_objects]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]

    content {
      sid       = "UseKey"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.missing_keys_answer_404["worker"].json]

  statement {
    sid = "JobObjects"
    # GetObjectVersion: chunks of an upload read the exact version the plan was cut from
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.jobs_objects]
  }

  statement {
    sid       = "ReadConfig"
    actions   = ["s3:GetObject"]
    resources = [local.config_objects]
  }

  statement {
    sid = "ConsumeQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    # the DLQ too when the worker records dead letters in their jobs
    resources = var.dead_letter_accounting_enabled ? [local.queue_arn, local.dlq_arn] : [local.queue_arn]
  }

  statement {
    sid       = "FanOutChunks"
    actions   = ["sqs:SendMessage"]
    resources = [local.queue_arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]

    content {
      sid       = "UseKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }

  dynamic "statement" {
    for_each = local.redshift_data ? [1] : []

    content {
      sid       = "RunStatements"
      actions   = ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
      resources = compact([local.redshift_cluster_arn, local.redshift_workgroup_arn])
    }
  }

  # Statement ids are random; the Data API scopes these calls to the caller's own statements.
  # CancelStatement lets the worker stop a statement it gives up on before its own timeout.
  dynamic "statement" {
    for_each = local.redshift_data ? [1] : []

    content {
      sid       = "OwnStatements"
      actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.redshift_data && local.redshift_cluster != null && local.redshift_secret == null ? [1] : []

    content {
      sid     = "ClusterCredentials"
      actions = ["redshift:GetClusterCredentials"]
      resources = [
        "arn:${local.partition}:redshift:${local.region}:${local.account_id}:dbuser:${local.redshift_cluster}/${coalesce(try(local.redshift.db_user, null), "-")}",
        "arn:${local.partition}:redshift:${local.region}:${local.account_id}:dbname:${local.redshift_cluster}/${try(local.redshift.database, "-")}",
      ]
    }
  }

  dynamic "statement" {
    for_each = local.redshift_data && local.redshift_workgroup != null && local.redshift_secret == null ? [1] : []

    content {
      sid       = "ServerlessCredentials"
      actions   = ["redshift-serverless:GetCredentials"]
      resources = [local.redshift_workgroup_arn]
    }
  }

  dynamic "statement" {
    for_each = local.redshift_secret == null ? [] : [1]

    content {
      sid       = "ReadDatabaseSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.redshift_secret]
    }
  }

  # RDS IAM authentication: a token for this database user on this instance or cluster only.
  dynamic "statement" {
    for_each = local.postgres_iam_auth ? [1] : []

    content {
      sid       = "ConnectAsDatabaseUser"
      actions   = ["rds-db:connect"]
      resources = ["arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${local.postgres.db_resource_id}/${local.postgres.user}"]
    }
  }

  dynamic "statement" {
    for_each = local.events_enabled ? [1] : []

    content {
      sid       = "PublishJobEvents"
      actions   = ["events:PutEvents"]
      resources = [local.events_bus_arn]
    }
  }

  dynamic "statement" {
    for_each = local.callbacks_enabled ? [1] : []

    content {
      sid       = "ReadCallbackSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.callback_secret_policy_arn]
    }
  }

  dynamic "statement" {
    for_each = local.postgres_secret == null ? [] : [1]

    content {
      sid       = "ReadPostgresSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.postgres_secret]
    }
  }
}
