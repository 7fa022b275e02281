# The module as the benchmarks run it: applied to the local stack's moto server, module defaults
# except what the local stack needs and smaller chunks (a 1,000-chunk job fits one inline request).
provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    apigateway   = var.aws_endpoint_url
    apigatewayv2 = var.aws_endpoint_url
    cloudwatch   = var.aws_endpoint_url
    iam          = var.aws_endpoint_url
    kms          = var.aws_endpoint_url
    lambda       = var.aws_endpoint_url
    logs         = var.aws_endpoint_url
    s3           = var.aws_endpoint_url
    sns          = var.aws_endpoint_url
    sqs          = var.aws_endpoint_url
    sts          = var.aws_endpoint_url
  }
}

module "async_jobs" {
  source = "../../"

  name = var.name

  # Open API: the local runtime serves it on 127.0.0.1 only.
  api_type      = "rest"
  authorization = "NONE"

  # The local runtime plays the SQS event source mapping (moto's own would need Docker); the
  # benchmarks set its concurrency per measurement, as update-event-source-mapping would.
  worker_event_source_enabled = false
  # moto does not implement the DLQ's RedriveAllowPolicy (the provider would wait for it forever).
  dlq_redrive_allow_policy_enabled = false

  # 100 records per chunk: 100,000 records (max_records_per_job) make 1,000 chunks.
  chunk_size = 100

  force_destroy         = true
  log_retention_in_days = 1
}
