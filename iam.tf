################################################################################
# Function permissions (logs, X-Ray and VPC come from modules/function)
################################################################################

locals {
  jobs_objects        = "${local.state_bucket_arn}/jobs/*"
  idempotency_objects = "${local.state_bucket_arn}/idempotency/*"
  config_objects      = "${local.state_bucket_arn}/config/*"
  # the owner-scoped job index GET /jobs lists (written by submit, listed by status)
  index_objects = "${local.state_bucket_arn}/index/*"
  # create-once claims of a job's event and callbacks (async_jobs.notify.Claims)
  notification_claims = "${local.state_bucket_arn}/jobs/*/notifications/*"

  redshift_data        = var.sink.type == "redshift_data"
  redshift_cluster     = try(local.redshift.cluster_identifier, null)
  redshift_workgroup   = try(local.redshift.workgroup_name, null)
  redshift_secret      = try(local.redshift.secret_arn, null)
  redshift_cluster_arn = local.redshift_cluster == null ? null : "arn:${local.partition}:redshift:${local.region}:${local.account_id}:cluster:${local.redshift_cluster}"
  # a workgroup's ARN carries its id, not its name: taken from the input, or looked up
  redshift_workgroup_arn = local.redshift_workgroup == null ? null : coalesce(try(local.redshift.workgroup_arn, null), try(data.aws_redshiftserverless_workgroup.sink[0].arn, null))
  postgres_iam_auth      = try(local.postgres.auth == "iam", false)
  postgres_secret        = try(local.postgres.secret_arn, null)

  # A secret given by ARN may be a partial ARN (no "-" and six random characters): IAM matches
  # the full one only through the wildcard. Secrets Manager decrypts a secret with the secret's
  # own KMS key on the caller's behalf: kms:Decrypt through Secrets Manager, for these secrets.
  given_secrets = compact([local.callbacks_enabled ? var.callbacks.secret_arn : null, local.redshift_secret, local.postgres_secret])
  secret_policy_arns = {
    for arn in local.given_secrets :
    arn => can(regex("-[A-Za-z0-9]{6}$", arn)) ? [arn] : [arn, "${arn}-??????"]
  }
}

# Every function reads keys that may not exist yet. S3 answers 404 for a missing key only to a
# caller allowed s3:ListBucket on the bucket, and 403 to anyone else. IAM evaluates that implicit
# check without request parameters (no s3:prefix), so a ListBucket scoped by an s3:prefix
# condition does not pass it: the grant is the bucket, unconditioned. It lets each role list key
# names in this deployment's own bucket, never read an object outside its prefixes.
data "aws_redshiftserverless_workgroup" "sink" {
  count = local.redshift_data && try(local.redshift.workgroup_name, null) != null && try(local.redshift.workgroup_arn, null) == null ? 1 : 0

  workgroup_name = local.redshift.workgroup_name
}

data "aws_iam_policy_document" "every_function" {
  statement {
    sid       = "MissingKeysAnswer404"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  # objects and messages written before kms_key_arn changed stay readable (docs/real-account.md)
  dynamic "statement" {
    for_each = length(var.previous_kms_key_arns) == 0 ? [] : [1]

    content {
      sid       = "DecryptWithPreviousKeys"
      actions   = ["kms:Decrypt"]
      resources = var.previous_kms_key_arns
    }
  }
}

data "aws_iam_policy_document" "submit" {
  source_policy_documents = [data.aws_iam_policy_document.every_function.json]

  statement {
    sid       = "JobsAndIdempotencyObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.jobs_objects, local.idempotency_objects]
  }

  # submit writes a job's GET /jobs entry (and removes it when the job is not created); status lists
  statement {
    sid       = "JobIndexEntries"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = [local.index_objects]
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
  source_policy_documents = [data.aws_iam_policy_document.every_function.json]

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
  source_policy_documents = [data.aws_iam_policy_document.every_function.json]

  statement {
    sid = "JobObjects"
    # GetObjectVersion: chunks of an upload read the exact version the plan was cut from
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.jobs_objects]
  }

  # a notification claim is released (deleted) when its publish fails, so the redelivery
  # publishes at once instead of waiting out the claim's lease
  statement {
    sid       = "ReleaseNotificationClaims"
    actions   = ["s3:DeleteObject"]
    resources = [local.notification_claims]
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
      actions   = ["redshift-data:BatchExecuteStatement"]
      resources = compact([local.redshift_cluster_arn, local.redshift_workgroup_arn])
    }
  }

  # Statements have no ARN: the condition keeps these calls to the statements this role's
  # sessions ran. CancelStatement stops a statement the worker gives up on before its own timeout.
  dynamic "statement" {
    for_each = local.redshift_data ? [1] : []

    content {
      sid       = "OwnStatements"
      actions   = ["redshift-data:DescribeStatement", "redshift-data:CancelStatement"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "redshift-data:statement-owner-iam-userid"
        values   = ["$${aws:userid}"]
      }
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
      resources = local.secret_policy_arns[local.redshift_secret]
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
      resources = var.callbacks.secret_arn == null ? [local.callback_secret_policy_arn] : local.secret_policy_arns[var.callbacks.secret_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.given_secrets) == 0 ? [] : [1]

    content {
      sid       = "DecryptGivenSecrets"
      actions   = ["kms:Decrypt"]
      resources = ["arn:${local.partition}:kms:${local.region}:*:key/*"]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }

      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:SecretARN"
        values   = flatten(values(local.secret_policy_arns))
      }
    }
  }

  dynamic "statement" {
    for_each = local.postgres_secret == null ? [] : [1]

    content {
      sid       = "ReadPostgresSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_policy_arns[local.postgres_secret]
    }
  }
}
