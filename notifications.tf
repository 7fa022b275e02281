################################################################################
# Completion events (EventBridge) and signed callbacks
################################################################################

locals {
  events_enabled    = var.events.enabled
  events_bus_arn    = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/${coalesce(var.events.bus_name, "default")}"
  callbacks_enabled = length(var.callbacks.allowed_hosts) > 0
  # the module's own secret unless the user names one
  create_callback_secret = local.callbacks_enabled && var.callbacks.secret_arn == null
  # Built from the name (Secrets Manager appends "-" and six random characters), so the
  # worker's policy is known at plan time; the environment gets the real ARN.
  callback_secret_name       = "${var.name}-callbacks-${local.region}"
  callback_secret_policy_arn = local.callbacks_enabled ? coalesce(var.callbacks.secret_arn, "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.callback_secret_name}-??????") : null
  callback_secret_arn        = local.callbacks_enabled ? coalesce(var.callbacks.secret_arn, try(aws_secretsmanager_secret.callbacks[0].arn, null)) : null

  # submit refuses callback URLs outside the allow-list and queues a cancelled job's notifications
  notify_api_environment = {
    EVENTS_ENABLED         = tostring(local.events_enabled)
    CALLBACK_ALLOWED_HOSTS = join(",", var.callbacks.allowed_hosts)
  }

  notify_worker_environment = merge(
    local.notify_api_environment,
    { for k, v in {
      EVENTS_BUS_NAME                  = var.events.bus_name
      EVENTS_SOURCE                    = var.events.source
      CALLBACK_SECRET_ARN              = local.callback_secret_arn
      CALLBACK_MAX_ATTEMPTS            = local.callbacks_enabled ? tostring(local.settings.callback_max_attempts) : null
      CALLBACK_TIMEOUT_SECONDS         = local.callbacks_enabled ? tostring(local.settings.callback_timeout_seconds) : null
      CALLBACK_ALLOW_PRIVATE_ADDRESSES = local.callbacks_enabled ? tostring(var.callbacks.allow_private_addresses) : null
      CALLBACK_CA_BUNDLE               = local.callbacks_enabled ? var.callbacks.ca_bundle_pem : null
    } : k => v if v != null },
  )
}

# The signing secret's value comes from an ephemeral resource and is written through the
# write-only argument: it is never in the plan or the state. Raising callbacks.secret_version
# writes a new value (rotation); the worker picks it up within its five-minute cache.
ephemeral "aws_secretsmanager_random_password" "callbacks" {
  count = local.create_callback_secret ? 1 : 0

  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "callbacks" {
  count = local.create_callback_secret ? 1 : 0
  #checkov:skip=CKV2_AWS_57:the signing key is rotated by raising callbacks.secret_version; receivers must accept the new value first

  name        = local.callback_secret_name
  description = "HMAC key that signs ${var.name}'s job callbacks (Async-Jobs-Signature)."
  kms_key_id  = var.kms_key_arn
  # A deleted signing key can be restored within the window (destroy, rename, switching to
  # callbacks.secret_arn); re-creating the same name meanwhile needs it restored or 0 here.
  recovery_window_in_days = var.callbacks.secret_recovery_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "callbacks" {
  count = local.create_callback_secret ? 1 : 0

  secret_id                = aws_secretsmanager_secret.callbacks[0].id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.callbacks[0].random_password
  secret_string_wo_version = var.callbacks.secret_version
}
