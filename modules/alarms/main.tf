data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  create_topic  = length(var.sns_topic_arns) == 0
  alarm_actions = local.create_topic ? [aws_sns_topic.alarms[0].arn] : var.sns_topic_arns

  api_dimensions = var.api_type == "rest" ? tomap({ ApiName = var.api_name, Stage = var.api_stage_name }) : tomap({ ApiId = var.api_id, Stage = var.api_stage_name })
  api_5xx_metric = var.api_type == "rest" ? "5XXError" : "5xx"
  api_4xx_metric = var.api_type == "rest" ? "4XXError" : "4xx"

  alarm_definitions = {
    # With dead-letter accounting the worker drains the DLQ within seconds, so the sampled
    # queue depth may never show the message: count the DLQ's receives instead.
    dlq_messages = {
      description = var.dead_letter_accounting ? "A message reached the dead-letter queue ${var.dlq_name}: the worker failed or was killed on its every receive. Its job was ended with it; see jobs/<id>/dead-letters/ and retry the job once the cause is fixed." : "Messages in the dead-letter queue ${var.dlq_name}: messages failed every receive. Inspect and redrive."
      namespace   = "AWS/SQS"
      metric_name = var.dead_letter_accounting ? "NumberOfMessagesReceived" : "ApproximateNumberOfMessagesVisible"
      dimensions  = tomap({ QueueName = var.dlq_name })
      statistic   = var.dead_letter_accounting ? "Sum" : "Maximum"
      threshold   = 0
    }
    dlq_oldest_message_age = {
      description = "Oldest message in the dead-letter queue ${var.dlq_name} is older than ${var.thresholds.dlq_oldest_message_age_seconds}s: dead letters are not being drained (worker failing on them, or dead-letter accounting off)."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateAgeOfOldestMessage"
      dimensions  = tomap({ QueueName = var.dlq_name })
      statistic   = "Maximum"
      threshold   = var.thresholds.dlq_oldest_message_age_seconds
    }
    queue_oldest_message_age = {
      description = "Oldest message in ${var.queue_name} is older than ${var.thresholds.queue_oldest_message_age_seconds}s: workers fall behind or are throttled."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateAgeOfOldestMessage"
      dimensions  = tomap({ QueueName = var.queue_name })
      statistic   = "Maximum"
      threshold   = var.thresholds.queue_oldest_message_age_seconds
    }
    worker_errors = {
      description = "Worker ${var.function_names.worker} invocations failed."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = tomap({ FunctionName = var.function_names.worker })
      statistic   = "Sum"
      threshold   = var.thresholds.worker_errors
    }
    worker_throttles = {
      description = "Worker ${var.function_names.worker} was throttled: maximum_concurrency exceeds the available concurrency."
      namespace   = "AWS/Lambda"
      metric_name = "Throttles"
      dimensions  = tomap({ FunctionName = var.function_names.worker })
      statistic   = "Sum"
      threshold   = 0
    }
    worker_duration = {
      description        = "Worker ${var.function_names.worker} p99 duration is above ${var.thresholds.worker_duration_timeout_ratio * 100}% of its ${var.worker_timeout}s timeout: lower chunk_size or raise worker.timeout."
      namespace          = "AWS/Lambda"
      metric_name        = "Duration"
      dimensions         = tomap({ FunctionName = var.function_names.worker })
      extended_statistic = "p99"
      threshold          = floor(var.worker_timeout * 1000 * var.thresholds.worker_duration_timeout_ratio)
    }
    api_5xx = {
      description = "API ${var.api_name} returned 5XX responses."
      namespace   = "AWS/ApiGateway"
      metric_name = local.api_5xx_metric
      dimensions  = tomap(local.api_dimensions)
      statistic   = "Sum"
      threshold   = 0
    }
    api_latency_p95 = {
      description        = "API ${var.api_name} p95 latency is above ${var.thresholds.api_latency_p95_ms} ms."
      namespace          = "AWS/ApiGateway"
      metric_name        = "Latency"
      dimensions         = tomap(local.api_dimensions)
      extended_statistic = "p95"
      threshold          = var.thresholds.api_latency_p95_ms
    }
    jobs_failed = {
      description = "Jobs of ${var.service_name} ended `failed`."
      namespace   = var.metrics_namespace
      metric_name = "JobsFailed"
      dimensions  = tomap({ service = var.service_name })
      statistic   = "Sum"
      threshold   = var.thresholds.jobs_failed
    }
  }

  alarms = {
    for k, v in local.alarm_definitions : k => merge({ statistic = null, extended_statistic = null }, v)
  }
}

################################################################################
# Topic
################################################################################

# CloudWatch publishes to an encrypted topic only if the key policy lets it use the key. The
# AWS managed alias/aws/sns key's policy cannot be changed, so alarms on a topic encrypted with
# it go to ALARM and nobody hears of it: the module's topic gets a key of its own.
data "aws_iam_policy_document" "topic_key" {
  count = local.create_topic && var.create_topic_kms_key ? 1 : 0

  #checkov:skip=CKV_AWS_109:a key policy's resource is the key itself; the account root statement is the standard delegation to IAM
  #checkov:skip=CKV_AWS_111:a key policy's resource is the key itself
  #checkov:skip=CKV_AWS_356:a key policy's resource is the key itself
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:cloudwatch:${var.region}:${data.aws_caller_identity.current.account_id}:alarm:${var.name}-*"]
    }
  }
}

resource "aws_kms_key" "topic" {
  count = local.create_topic && var.create_topic_kms_key ? 1 : 0

  description         = "${var.name}: alarm topic (CloudWatch may publish)"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.topic_key[0].json
  tags                = var.tags
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:encrypted with the module's own key unless topic_kms_key_arn is given or encryption is turned off explicitly
  count = local.create_topic ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.create_topic_kms_key ? aws_kms_key.topic[0].arn : var.topic_kms_key_arn
  tags              = var.tags
}

################################################################################
# Alarms
################################################################################

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended_statistic
  period              = var.period_seconds
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

################################################################################
# Dashboard
################################################################################

resource "aws_cloudwatch_dashboard" "this" {
  # Dashboards are account-global (not regional): the region keeps two regions' apart.
  dashboard_name = "${var.name}-${var.region}"

  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "API requests and errors"
          region  = var.region
          stat    = "Sum"
          metrics = [for m in ["Count", local.api_4xx_metric, local.api_5xx_metric] : concat(["AWS/ApiGateway", m], flatten([for k, v in local.api_dimensions : [k, v]]))]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "API latency p95 (ms)"
          region  = var.region
          stat    = "p95"
          metrics = [concat(["AWS/ApiGateway", "Latency"], flatten([for k, v in local.api_dimensions : [k, v]]))]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Queue depth"
          region = var.region
          stat   = "Maximum"
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.queue_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { label = "DLQ visible" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Age of oldest message (s)"
          region  = var.region
          stat    = "Maximum"
          metrics = [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name]]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Functions: invocations, errors, throttles"
          region = var.region
          stat   = "Sum"
          metrics = flatten([
            for fn in [var.function_names.submit, var.function_names.worker, var.function_names.status] : [
              for m in ["Invocations", "Errors", "Throttles"] : ["AWS/Lambda", m, "FunctionName", fn]
            ]
          ])
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "Worker duration (ms) and concurrency"
          region = var.region
          metrics = [
            ["AWS/Lambda", "Duration", "FunctionName", var.function_names.worker, { stat = "p99" }],
            ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", var.function_names.worker, { stat = "Maximum", yAxis = "right" }],
          ]
          annotations = { horizontal = [{ label = "timeout", value = var.worker_timeout * 1000 }] }
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 24, height = 6
        properties = {
          title   = "Jobs"
          region  = var.region
          stat    = "Sum"
          metrics = [for m in ["JobsSubmitted", "JobsSucceeded", "JobsCompletedWithErrors", "JobsFailed", "JobsCancelled"] : [var.metrics_namespace, m, "service", var.service_name]]
        }
      },
    ]
  })
}
