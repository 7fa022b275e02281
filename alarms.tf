################################################################################
# Alarms and dashboard
################################################################################

module "alarms" {
  source = "./modules/alarms"
  count  = var.create_alarms ? 1 : 0

  name   = var.name
  region = local.region
  tags   = var.tags

  api_type       = var.api_type
  api_id         = local.api_id
  api_name       = var.name
  api_stage_name = local.api_stage_name
  queue_name     = aws_sqs_queue.this.name
  dlq_name       = aws_sqs_queue.dlq.name

  dead_letter_accounting = var.dead_letter_accounting_enabled
  function_names = {
    submit = module.submit.function_name
    worker = module.worker.function_name
    status = module.status.function_name
  }
  worker_timeout    = var.worker.timeout
  metrics_namespace = var.metrics_namespace
  service_name      = var.name

  thresholds     = var.alarm_thresholds
  period_seconds = var.alarm_period_seconds
  sns_topic_arns = var.alarm_sns_topic_arns

  # The module's topic: a key of its own (CloudWatch may use it), a given key, or none.
  create_topic_kms_key = var.alarm_topic_encryption.create_kms_key
  topic_kms_key_arn    = var.alarm_topic_encryption.kms_key_arn
}
