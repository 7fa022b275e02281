# The module applied to a local AWS emulator (moto server): no account, fake credentials.
provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    apigateway     = var.aws_endpoint_url
    apigatewayv2   = var.aws_endpoint_url
    cloudwatch     = var.aws_endpoint_url
    events         = var.aws_endpoint_url
    iam            = var.aws_endpoint_url
    kms            = var.aws_endpoint_url
    lambda         = var.aws_endpoint_url
    logs           = var.aws_endpoint_url
    s3             = var.aws_endpoint_url
    secretsmanager = var.aws_endpoint_url
    sns            = var.aws_endpoint_url
    sqs            = var.aws_endpoint_url
    sts            = var.aws_endpoint_url
  }
}

module "async_jobs" {
  source = "../../"

  name = var.name

  # Open API: the local runtime serves it on 127.0.0.1 only.
  api_type      = "rest"
  authorization = "NONE"

  # The local runtime plays the SQS event source mapping (moto's own would need Docker).
  worker_event_source_enabled = false
  # moto does not implement the DLQ's RedriveAllowPolicy (the provider would wait for it forever).
  dlq_redrive_allow_policy_enabled = false

  # Short timeouts keep redelivery quick: visibility timeout = 6 x 10 = 60 s.
  worker = {
    timeout                        = 10
    reserved_concurrent_executions = 4
  }
  worker_maximum_concurrency = 4
  worker_batch_size          = 1
  # no batching window: the tests' messages are handled as they arrive
  worker_maximum_batching_window_in_seconds = 0

  chunk_size             = var.chunk_size
  upload_url_ttl_seconds = var.upload_url_ttl_seconds

  force_destroy         = true
  log_retention_in_days = 1

  # Completion events on the default bus; the local runtime appends each to logs/events.ndjson.
  # Callbacks reach a receiver on this machine: private addresses (127.0.0.1) are allowed here
  # only, and the receiver's own CA is trusted for callbacks (never TLS verification off).
  callbacks = {
    allowed_hosts           = var.callback_allowed_hosts
    allow_private_addresses = true
    ca_bundle_pem           = var.callback_ca_bundle_pem
  }
}
