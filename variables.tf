################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the deployment: prefix of every resource name (the state bucket's too) and the Powertools service name. Lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit, 2..31 characters; not starting with xn--, sthree- or amzn-s3-demo- (prefixes S3 refuses in bucket names). Changing it replaces the bucket, the queues and the log groups: see docs/real-account.md."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,29}[a-z0-9]$", var.name))
    error_message = "name must match ^[a-z][a-z0-9-]{0,29}[a-z0-9]$ (lowercase letters, digits, hyphens; starts with a letter, ends with a letter or digit; 2..31 characters)."
  }

  validation {
    condition     = !strcontains(var.name, "--")
    error_message = "name must not contain \"--\": S3 refuses adjacent hyphens in the derived bucket names (\"--\" marks S3's own suffixes such as --x-s3 and --ol-s3). Use single hyphens."
  }

  validation {
    condition     = !anytrue([for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] : startswith(var.name, prefix)])
    error_message = "name must not start with xn--, sthree- or amzn-s3-demo-: S3 refuses bucket names with these prefixes, and the state bucket's name starts with name."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN used for the state bucket, the queues, the log groups, the alarm topic and the functions' environment. null uses SSE-S3, SQS-managed SSE and the default CloudWatch Logs encryption. The key policy must allow CloudWatch Logs and, for upload notifications, s3.amazonaws.com (kms:GenerateDataKey, kms:Decrypt). The alarm topic has its own setting (alarm_topic_encryption)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
}

variable "keep_log_groups_on_destroy" {
  description = "Leave the functions' and the API's log groups (and their logs) in the account on destroy or rename. Re-creating the same deployment name then needs the kept groups imported or deleted first (CloudWatch Logs refuses a group that exists)."
  type        = bool
  default     = false
}

variable "previous_kms_key_arns" {
  description = "KMS keys that kms_key_arn named before: the functions may still decrypt with them, so state objects and queued messages written before the change stay readable. Remove a key once every job started before the change has expired and the queues have drained (docs/real-account.md)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.previous_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", arn))])
    error_message = "previous_kms_key_arns entries must be KMS key ARNs (arn:aws:kms:<region>:<account>:key/<id>), not aliases."
  }
}

variable "log_retention_in_days" {
  description = "Retention of every log group (functions, API access and execution logs)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the CloudWatch Logs values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

################################################################################
# Functions
################################################################################

variable "runtime" {
  description = "Lambda runtime of the three functions; null uses functions/platform.json (python3.13). The packages must be built for it (`make build RUNTIME=...`)."
  type        = string
  default     = null

  validation {
    condition     = var.runtime == null || contains(["python3.12", "python3.13"], coalesce(var.runtime, "-"))
    error_message = "runtime must be one of python3.12, python3.13 (or null for the default in functions/platform.json); python3.14 needs hashicorp/aws >= 6.20, above this module's provider range (docs/real-account.md)."
  }
}

variable "architecture" {
  description = "Instruction set of the three functions; null uses functions/platform.json (arm64). The packages must be built for it (`make build ARCH=...`)."
  type        = string
  default     = null

  validation {
    condition     = var.architecture == null || contains(["arm64", "x86_64"], coalesce(var.architecture, "-"))
    error_message = "architecture must be arm64 or x86_64 (or null for the default in functions/platform.json)."
  }
}

variable "packages" {
  description = "Deployment package of each function: a local zip (`filename`, default `<module>/dist/<name>.zip` built by `make build`) or an S3 object (`s3_bucket`, `s3_key`, optional `s3_object_version`)."
  type = object({
    submit = optional(object({
      filename          = optional(string)
      s3_bucket         = optional(string)
      s3_key            = optional(string)
      s3_object_version = optional(string)
    }), {})
    worker = optional(object({
      filename          = optional(string)
      s3_bucket         = optional(string)
      s3_key            = optional(string)
      s3_object_version = optional(string)
    }), {})
    status = optional(object({
      filename          = optional(string)
      s3_bucket         = optional(string)
      s3_key            = optional(string)
      s3_object_version = optional(string)
    }), {})
  })
  default = {}

  validation {
    condition = alltrue([
      for p in [var.packages.submit, var.packages.worker, var.packages.status] :
      !(p.filename != null && p.s3_bucket != null) && (p.s3_bucket == null) == (p.s3_key == null)
    ])
    error_message = "packages.<function> sets either filename or s3_bucket + s3_key (with optional s3_object_version), not both."
  }
}

variable "submit" {
  description = "Submit function (POST /jobs, POST /jobs/uploads, DELETE /jobs/{job_id}): memory in MB, timeout in seconds, reserved concurrency (null = unreserved) and extra environment variables."
  type = object({
    memory_size                    = optional(number, 256)
    timeout                        = optional(number, 15)
    reserved_concurrent_executions = optional(number)
    environment                    = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = var.submit.memory_size >= 128 && var.submit.memory_size <= 10240
    error_message = "submit.memory_size must be between 128 and 10240."
  }

  validation {
    condition     = var.submit.timeout >= 1 && var.submit.timeout <= 900
    error_message = "submit.timeout must be between 1 and 900."
  }

  validation {
    condition     = var.submit.reserved_concurrent_executions == null || coalesce(var.submit.reserved_concurrent_executions, 0) >= 0
    error_message = "submit.reserved_concurrent_executions must be >= 0 or null."
  }
}

variable "worker" {
  description = "Worker function (SQS consumer): memory in MB, timeout in seconds, reserved concurrency (null = unreserved, the default: a reservation must leave the account's unreserved minimum, which a fresh account's quota of 10 cannot; worker_maximum_concurrency is the cap that protects the sink) and extra environment variables."
  type = object({
    memory_size                    = optional(number, 512)
    timeout                        = optional(number, 120)
    reserved_concurrent_executions = optional(number)
    environment                    = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = var.worker.memory_size >= 128 && var.worker.memory_size <= 10240
    error_message = "worker.memory_size must be between 128 and 10240."
  }

  validation {
    condition     = var.worker.timeout >= 1 && var.worker.timeout <= 900
    error_message = "worker.timeout must be between 1 and 900."
  }

  validation {
    condition     = var.worker.reserved_concurrent_executions == null || coalesce(var.worker.reserved_concurrent_executions, 0) >= 0
    error_message = "worker.reserved_concurrent_executions must be >= 0 or null."
  }
}

variable "status" {
  description = "Status function (GET /jobs/{job_id}): memory in MB, timeout in seconds, reserved concurrency (null = unreserved) and extra environment variables."
  type = object({
    memory_size                    = optional(number, 256)
    timeout                        = optional(number, 10)
    reserved_concurrent_executions = optional(number)
    environment                    = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = var.status.memory_size >= 128 && var.status.memory_size <= 10240
    error_message = "status.memory_size must be between 128 and 10240."
  }

  validation {
    condition     = var.status.timeout >= 1 && var.status.timeout <= 900
    error_message = "status.timeout must be between 1 and 900."
  }

  validation {
    condition     = var.status.reserved_concurrent_executions == null || coalesce(var.status.reserved_concurrent_executions, 0) >= 0
    error_message = "status.reserved_concurrent_executions must be >= 0 or null."
  }
}

variable "tracing_enabled" {
  description = "X-Ray active tracing on the functions and the REST API stage."
  type        = bool
  default     = true
}

variable "log_level" {
  description = "Level of the functions' application logs: Lambda's application_log_level (which Powertools adopts over POWERTOOLS_LOG_LEVEL) and POWERTOOLS_LOG_LEVEL. DEBUG or INFO: Lambda files the Powertools EMF metric lines, which carry no level, as INFO, so a higher level would drop every metric and the jobs-failed alarm with them."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO"], var.log_level)
    error_message = "log_level must be DEBUG or INFO: Lambda filters JSON application logs at this level and files the EMF metric lines (no level) as INFO, so WARNING or above would drop every metric. Silence INFO lines in code, not here."
  }
}

variable "system_log_level" {
  description = "Lambda's filter for its own platform log lines (START, END, REPORT): DEBUG, INFO or WARN. INFO keeps the REPORT lines (duration, memory)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN"], var.system_log_level)
    error_message = "system_log_level must be DEBUG, INFO or WARN."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' metrics (POWERTOOLS_METRICS_NAMESPACE); the jobs-failed alarm reads it."
  type        = string
  default     = "AsyncJobs"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1..255 characters of A-Za-z0-9 . _ / # : - and must not start with AWS/."
  }
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for the three function roles."
  type        = string
  default     = null
}

variable "vpc_config" {
  description = "Subnets and security groups for the worker (needed by the `redshift` sink for clusters in a VPC); null runs it outside a VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null

  validation {
    condition     = var.vpc_config == null || (length(try(var.vpc_config.subnet_ids, [])) > 0 && length(try(var.vpc_config.security_group_ids, [])) > 0)
    error_message = "vpc_config needs at least one subnet_id and one security_group_id."
  }
}

################################################################################
# Jobs
################################################################################

variable "max_records_per_job" {
  description = "Largest number of records a job may have (413 above it). null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.max_records_per_job == null || try(var.max_records_per_job >= local.contract.settings.max_records_per_job.minimum && var.max_records_per_job <= coalesce(local.contract.settings.max_records_per_job.maximum, var.max_records_per_job) && floor(var.max_records_per_job) == var.max_records_per_job, false)
    error_message = "max_records_per_job must be at least ${local.contract.settings.max_records_per_job.minimum} (a whole number), got ${coalesce(var.max_records_per_job, "null")} (or null for the default)."
  }
}

variable "max_body_bytes" {
  description = "Largest request body POST /jobs accepts in bytes (413 above it); larger inputs use POST /jobs/uploads. At most 3112960: the body reaches Lambda inside a JSON event, where escaping can double it (REST and HTTP API application/json: every `\"` and `\\` becomes two bytes; HTTP API base64-encodes application/x-ndjson, x4/3), plus up to 64 KiB of headers and request context, and the whole event must fit Lambda's 6291456-byte invocation payload, or the client gets a 5xx instead of a 413. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.max_body_bytes == null || try(var.max_body_bytes >= local.contract.settings.max_body_bytes.minimum && var.max_body_bytes <= coalesce(local.contract.settings.max_body_bytes.maximum, var.max_body_bytes) && floor(var.max_body_bytes) == var.max_body_bytes, false)
    error_message = "max_body_bytes must be between ${local.contract.settings.max_body_bytes.minimum} and ${local.contract.settings.max_body_bytes.maximum} (a whole number), got ${coalesce(var.max_body_bytes, "null")}: API Gateway's JSON escaping can double the body inside the Lambda event, and (6291456 - 65536 bytes of headers and context) / 2 = 3112960 is what still fits Lambda's invocation payload. Send larger inputs through POST /jobs/uploads."
  }
}

variable "upload_url_ttl_seconds" {
  description = "Lifetime of the presigned upload URL of POST /jobs/uploads: a PUT must begin by then (`upload.expires_at`) and land within 60 s after it (`upload.complete_by`), or the job ends `expired`. A presigned URL dies with the temporary credentials that signed it (the function role's session, 12 hours at most and possibly near its end), so longer TTLs would be promises S3 does not keep. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.upload_url_ttl_seconds == null || try(var.upload_url_ttl_seconds >= local.contract.settings.upload_url_ttl_seconds.minimum && var.upload_url_ttl_seconds <= coalesce(local.contract.settings.upload_url_ttl_seconds.maximum, var.upload_url_ttl_seconds) && floor(var.upload_url_ttl_seconds) == var.upload_url_ttl_seconds, false)
    error_message = "upload_url_ttl_seconds must be between ${local.contract.settings.upload_url_ttl_seconds.minimum} and ${local.contract.settings.upload_url_ttl_seconds.maximum} (a whole number), got ${coalesce(var.upload_url_ttl_seconds, "null")}: a presigned URL dies with the function role's temporary session credentials that signed it (12 hours at most, possibly near their end), so a longer TTL would not be honoured. Lower it; a client that needs longer asks for a new upload."
  }
}

variable "max_upload_bytes" {
  description = "Largest object POST /jobs/uploads takes, in bytes (stated as `upload.max_bytes` in the slot). A larger upload fails its job with the reason when it lands, before any record is read. At most 5368709120, S3's limit for one PUT. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.max_upload_bytes == null || try(var.max_upload_bytes >= local.contract.settings.max_upload_bytes.minimum && var.max_upload_bytes <= coalesce(local.contract.settings.max_upload_bytes.maximum, var.max_upload_bytes) && floor(var.max_upload_bytes) == var.max_upload_bytes, false)
    error_message = "max_upload_bytes must be a whole number from ${local.contract.settings.max_upload_bytes.minimum} to ${local.contract.settings.max_upload_bytes.maximum} (5 GiB, the largest object one presigned PUT can create), got ${coalesce(var.max_upload_bytes, "null")}. Lower it, or split the input into several jobs."
  }
}

variable "errors_url_ttl_seconds" {
  description = "Lifetime of the presigned `links.errors` URL of GET /jobs/{job_id}; it is signed anew on each GET. Capped like upload_url_ttl_seconds: the URL dies with the status role's session credentials. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.errors_url_ttl_seconds == null || try(var.errors_url_ttl_seconds >= local.contract.settings.errors_url_ttl_seconds.minimum && var.errors_url_ttl_seconds <= coalesce(local.contract.settings.errors_url_ttl_seconds.maximum, var.errors_url_ttl_seconds) && floor(var.errors_url_ttl_seconds) == var.errors_url_ttl_seconds, false)
    error_message = "errors_url_ttl_seconds must be between ${local.contract.settings.errors_url_ttl_seconds.minimum} and ${local.contract.settings.errors_url_ttl_seconds.maximum} (a whole number), got ${coalesce(var.errors_url_ttl_seconds, "null")}: a presigned URL dies with the function role's temporary session credentials that signed it, so a longer TTL would not be honoured. Clients GET the job again for a fresh link."
  }
}

variable "retry_after_seconds" {
  description = "Retry-After header value (seconds) for jobs that are not finished. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.retry_after_seconds == null || try(var.retry_after_seconds >= local.contract.settings.retry_after_seconds.minimum && var.retry_after_seconds <= coalesce(local.contract.settings.retry_after_seconds.maximum, var.retry_after_seconds) && floor(var.retry_after_seconds) == var.retry_after_seconds, false)
    error_message = "retry_after_seconds must be between ${local.contract.settings.retry_after_seconds.minimum} and ${local.contract.settings.retry_after_seconds.maximum} (a whole number), got ${coalesce(var.retry_after_seconds, "null")} (or null for the default)."
  }
}

variable "chunk_size" {
  description = "Records per chunk: the unit of parallel work, of accounting and of retry. Each chunk costs a handful of S3 requests (claim, ranged read, sink, marker), so larger chunks cost less per record. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.chunk_size == null || try(var.chunk_size >= local.contract.settings.chunk_size.minimum && var.chunk_size <= coalesce(local.contract.settings.chunk_size.maximum, var.chunk_size) && floor(var.chunk_size) == var.chunk_size, false)
    error_message = "chunk_size must be between ${local.contract.settings.chunk_size.minimum} and ${local.contract.settings.chunk_size.maximum} (a whole number), got ${coalesce(var.chunk_size, "null")} (or null for the default)."
  }
}

variable "tolerated_failure_percent" {
  description = "Percentage of failed records under which a job ends `completed_with_errors` instead of `failed`. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.tolerated_failure_percent == null || try(var.tolerated_failure_percent >= local.contract.settings.tolerated_failure_percent.minimum && var.tolerated_failure_percent <= coalesce(local.contract.settings.tolerated_failure_percent.maximum, var.tolerated_failure_percent), false)
    error_message = "tolerated_failure_percent must be between ${local.contract.settings.tolerated_failure_percent.minimum} and ${local.contract.settings.tolerated_failure_percent.maximum}, got ${coalesce(var.tolerated_failure_percent, "null")} (or null for the default)."
  }
}

variable "record_schema" {
  description = "Optional JSON Schema (a JSON string) every record is validated against; written to `config/record-schema.json` in the state bucket."
  type        = string
  default     = null

  validation {
    condition     = var.record_schema == null || can(jsondecode(coalesce(var.record_schema, "{}")))
    error_message = "record_schema must be a JSON document (use jsonencode({...}) or file(\"schema.json\"))."
  }
}

variable "record_processor" {
  description = "Optional user transform `module:function` packaged with the worker, applied to each record before the sink."
  type        = string
  default     = null

  validation {
    condition     = var.record_processor == null || can(regex("^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$", coalesce(var.record_processor, "-")))
    error_message = "record_processor must look like `package.module:function`."
  }
}

variable "sink" {
  description = "Where the worker writes processed records: `s3` (NDJSON under the job's results/ prefix), `redshift_data` (Redshift Data API), `redshift` (redshift-connector, usually with vpc_config) or `postgres` (psycopg: RDS, Aurora or any PostgreSQL, usually with vpc_config; see `postgres` below). `redshift` settings: table, database, and either cluster_identifier (+ db_user, or secret_arn) or workgroup_name for Serverless with the Data API (the worker's grants name the workgroup's ARN: workgroup_arn, or looked up by name at plan time); host/port and secret_arn for the connector; copy_role_arn is the role Redshift assumes for COPY from the state bucket; statement_timeout_seconds is how long the worker waits for a statement before it cancels it (null: worker.timeout - 30, at least 1; it must end 10 s before worker.timeout)."
  type = object({
    type = optional(string, "s3")
    redshift = optional(object({
      table              = string
      database           = string
      schema             = optional(string, "public")
      cluster_identifier = optional(string)
      workgroup_name     = optional(string)
      workgroup_arn      = optional(string)
      db_user            = optional(string)
      secret_arn         = optional(string)
      host               = optional(string)
      port               = optional(number, 5439)
      copy_role_arn      = optional(string)
      # null: worker.timeout - 30 (at least 1), so the worker cancels before Lambda stops it.
      statement_timeout_seconds = optional(number)
    }))
    # PostgreSQL (RDS, Aurora or any server): the target table needs a unique key on
    # (job_id, record_index); each chunk is upserted in one transaction.
    postgres = optional(object({
      host     = string
      port     = optional(number, 5432)
      database = string
      user     = string
      table    = string
      schema   = optional(string, "public")
      # iam: an RDS IAM auth token (rds-db:connect on db_resource_id); secret: the password
      # in secret_arn (an RDS-managed JSON secret or a plain string).
      auth           = optional(string, "iam")
      db_resource_id = optional(string)
      secret_arn     = optional(string)
      # require encrypts; verify-full also checks the server against sslrootcert (a CA bundle
      # packaged with the worker, e.g. the RDS global bundle, or "system").
      sslmode     = optional(string, "require")
      sslrootcert = optional(string)
      # null: worker.timeout - 30 (at least 1): the server cancels a chunk before Lambda stops it.
      statement_timeout_seconds = optional(number)
    }))
  })
  default = {}

  validation {
    condition     = contains(["s3", "redshift_data", "redshift", "postgres"], var.sink.type)
    error_message = "sink.type must be one of s3, redshift_data, redshift, postgres; got \"${var.sink.type}\"."
  }

  validation {
    condition     = var.sink.type != "postgres" || var.sink.postgres != null
    error_message = "sink.postgres (host, database, user, table, auth) must be set when sink.type is postgres."
  }

  validation {
    condition     = try(contains(["iam", "secret"], var.sink.postgres.auth), true)
    error_message = "sink.postgres.auth must be iam (RDS IAM auth token) or secret (password in Secrets Manager)."
  }

  validation {
    condition     = try(var.sink.postgres.auth != "iam" || can(regex("^(db|cluster)-[A-Z0-9]+$", var.sink.postgres.db_resource_id)), true)
    error_message = "sink.postgres.auth = iam needs sink.postgres.db_resource_id, the instance's DbiResourceId (db-...) or the Aurora cluster's DbClusterResourceId (cluster-...), for the rds-db:connect permission."
  }

  validation {
    condition     = try((var.sink.postgres.auth == "secret") == (var.sink.postgres.secret_arn != null), true)
    error_message = "sink.postgres.secret_arn is needed with auth = secret, and only then (with auth = iam the password is an IAM token)."
  }

  validation {
    condition     = try(contains(["require", "verify-ca", "verify-full"], var.sink.postgres.sslmode), true)
    error_message = "sink.postgres.sslmode must be require, verify-ca or verify-full: the worker never sends records in plain text."
  }

  validation {
    condition     = try(!strcontains(var.sink.postgres.table, "."), true)
    error_message = "sink.postgres.table is a table name without schema: set the schema in sink.postgres.schema."
  }

  validation {
    condition     = !contains(["redshift_data", "redshift"], var.sink.type) || var.sink.redshift != null
    error_message = "sink.redshift must be set when sink.type is redshift_data or redshift."
  }

  validation {
    condition = var.sink.type != "redshift_data" || try(
      (var.sink.redshift.cluster_identifier != null) != (var.sink.redshift.workgroup_name != null), false
    )
    error_message = "sink.type = redshift_data needs exactly one of sink.redshift.cluster_identifier and sink.redshift.workgroup_name."
  }

  validation {
    condition     = var.sink.type != "redshift_data" || try(var.sink.redshift.cluster_identifier == null || var.sink.redshift.db_user != null || var.sink.redshift.secret_arn != null, false)
    error_message = "sink.type = redshift_data with sink.redshift.cluster_identifier needs sink.redshift.db_user (temporary credentials) or sink.redshift.secret_arn."
  }

  validation {
    condition     = var.sink.type != "redshift" || try(var.sink.redshift.host != null && var.sink.redshift.secret_arn != null, false)
    error_message = "sink.type = redshift needs sink.redshift.host and sink.redshift.secret_arn (database credentials)."
  }
}

################################################################################
# State bucket
################################################################################

variable "state_bucket_name" {
  description = "Name of the state bucket; null uses `<name>-<account id>-<region>`."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.state_bucket_name, "-")))
    error_message = "state_bucket_name must be a valid S3 bucket name: 3..63 lowercase letters, digits, dots and hyphens."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the state bucket with all job data in it."
  type        = bool
  default     = false
}

variable "job_expiration_days" {
  description = "Days after which job objects (`jobs/`) expire; GET returns 404 afterwards."
  type        = number
  default     = 30

  validation {
    condition     = var.job_expiration_days >= 1 && floor(var.job_expiration_days) == var.job_expiration_days
    error_message = "job_expiration_days must be a positive integer."
  }
}

variable "idempotency_expiration_days" {
  description = "Days an Idempotency-Key is remembered (`idempotency/` objects)."
  type        = number
  default     = 1

  validation {
    condition     = var.idempotency_expiration_days >= 1 && floor(var.idempotency_expiration_days) == var.idempotency_expiration_days
    error_message = "idempotency_expiration_days must be a positive integer."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions (every state update makes one) are deleted."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a positive integer."
  }
}

################################################################################
# Queue
################################################################################

variable "queue_fifo" {
  description = "Use FIFO queues (ordered per job). S3 cannot notify FIFO queues, so a FIFO deployment has no POST /jobs/uploads route."
  type        = bool
  default     = false
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the work queue; null computes 6 x worker.timeout + worker_maximum_batching_window_in_seconds (the AWS recommendation). An explicit value must be at least that."
  type        = number
  default     = null

  validation {
    condition     = var.queue_visibility_timeout_seconds == null || (coalesce(var.queue_visibility_timeout_seconds, 0) >= 0 && coalesce(var.queue_visibility_timeout_seconds, 0) <= 43200)
    error_message = "queue_visibility_timeout_seconds must be between 0 and 43200 (12 hours), or null."
  }
}

variable "queue_message_retention_seconds" {
  description = "Retention of messages in the work queue (60..1036800, 12 days). The DLQ keeps messages 14 days, and a message moved there keeps its original enqueue time, so the DLQ's retention must exceed the queue's by the time operators need to act on the DLQ alarm."
  type        = number
  default     = 345600

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1036800
    error_message = "queue_message_retention_seconds must be between 60 and 1036800 (12 days): a message redriven to the DLQ (14 days) keeps its enqueue time, so at a longer queue retention it could expire in the DLQ before anyone reads it."
  }
}

variable "max_receive_count" {
  description = "Receives before a message moves to the DLQ (redrive maxReceiveCount); a chunk on its last receive records its records as failed. null: the default in functions/shared/async_jobs/contract.json, which also holds the bounds."
  type        = number
  default     = null

  # The contract's bounds; try() makes null (the default) pass: || does not short-circuit.
  validation {
    condition     = var.max_receive_count == null || try(var.max_receive_count >= local.contract.settings.max_receive_count.minimum && var.max_receive_count <= coalesce(local.contract.settings.max_receive_count.maximum, var.max_receive_count) && floor(var.max_receive_count) == var.max_receive_count, false)
    error_message = "max_receive_count must be between ${local.contract.settings.max_receive_count.minimum} and ${local.contract.settings.max_receive_count.maximum} (a whole number), got ${coalesce(var.max_receive_count, "null")} (or null for the default)."
  }
}

variable "queue_additional_senders" {
  description = "IAM role or user ARNs that may send to the work queue besides the module's submit and worker roles and S3 for the state bucket (its policy denies sqs:SendMessage to every other principal, of this account too): an operator role that redrives the DLQ with start-message-move-task, for one. Each sender can start or steer any job's processing: name only principals trusted as much as the worker."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.queue_additional_senders : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\\w+=,.@/-]+$", arn))])
    error_message = "queue_additional_senders entries must be IAM role or user ARNs (arn:aws:iam::123456789012:role/operator): the queue policy compares them with aws:PrincipalArn, which is the role's ARN for its sessions."
  }
}

variable "dlq_redrive_allow_policy_enabled" {
  description = "Attach a redrive-allow policy to the DLQ so only the work queue may use it. Emulators without RedriveAllowPolicy support (moto) need false."
  type        = bool
  default     = true
}

################################################################################
# Worker event source mapping
################################################################################

variable "worker_batch_size" {
  description = "Messages per worker invocation (FIFO: at most 10; standard: above 10 needs a batching window >= 1). The chunk completions of one invocation are accounted in one compare-and-swap per state segment, so a batch of 10 divides the state writes by ten."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_batch_size >= 1 && var.worker_batch_size <= 10000
    error_message = "worker_batch_size must be between 1 and 10000."
  }
}

variable "worker_maximum_batching_window_in_seconds" {
  description = "Seconds the event source mapping gathers messages before invoking the worker (0..300; FIFO: 0). null: 1 on a standard queue (fuller batches at a job's start and end), 0 on a FIFO queue."
  type        = number
  default     = null

  validation {
    condition     = var.worker_maximum_batching_window_in_seconds == null ? true : (var.worker_maximum_batching_window_in_seconds >= 0 && var.worker_maximum_batching_window_in_seconds <= 300)
    error_message = "worker_maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "worker_maximum_concurrency" {
  description = "Most concurrent worker invocations the event source mapping starts (2..1000): the cap that protects the sink. Must not exceed worker.reserved_concurrent_executions."
  type        = number
  default     = 5

  validation {
    condition     = var.worker_maximum_concurrency >= 2 && var.worker_maximum_concurrency <= 1000
    error_message = "worker_maximum_concurrency must be between 2 and 1000."
  }
}

variable "dead_letter_accounting_enabled" {
  description = "The worker also consumes the DLQ (a second event source mapping): each dead-lettered message is recorded in its job (a chunk's records failed, a split's job failed) and kept under jobs/<id>/dead-letters/, so a job ends even when Lambda kills the worker (timeout, memory) on a message's last receive. false leaves dead letters in the DLQ for an operator (jobs they belong to may then never end)."
  type        = bool
  default     = true
}

variable "dead_letter_batch_size" {
  description = "Messages per invocation of the DLQ's event source mapping. Small: each dead letter costs a few S3 requests and the DLQ is normally empty."
  type        = number
  default     = 5

  validation {
    condition     = var.dead_letter_batch_size >= 1 && var.dead_letter_batch_size <= 10
    error_message = "dead_letter_batch_size (${var.dead_letter_batch_size}) must be between 1 and 10 (a FIFO queue's limit, and no batching window is used)."
  }
}

variable "worker_event_source_enabled" {
  description = "Enable the SQS event source mapping of the worker. The local stack sets false and plays the mapping itself."
  type        = bool
  default     = true
}

################################################################################
# API
################################################################################

variable "api_type" {
  description = "API Gateway flavour: `rest` (REST API, default) or `http` (HTTP API, payload format 2.0)."
  type        = string
  default     = "rest"

  validation {
    condition     = contains(["rest", "http"], var.api_type)
    error_message = "api_type must be rest or http."
  }
}

variable "authorization" {
  description = "Authorization of every route: AWS_IAM (SigV4, default), JWT (http: jwt_authorizer), COGNITO (rest: cognito_user_pool_arns), API_KEY (rest: x-api-key with a usage plan) or NONE (open; only when asked for)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "JWT", "COGNITO", "API_KEY", "NONE"], var.authorization)
    error_message = "authorization must be one of AWS_IAM, JWT, COGNITO, API_KEY, NONE."
  }
}

variable "jwt_authorizer" {
  description = "JWT authorizer of the HTTP API (authorization = JWT): issuer URL and accepted audiences."
  type = object({
    issuer   = string
    audience = list(string)
  })
  default = null
}

variable "cognito_user_pool_arns" {
  description = "Cognito user pools of the REST API authorizer (authorization = COGNITO)."
  type        = list(string)
  default     = []
}

variable "api_key" {
  description = "API keys (rest, authorization = API_KEY): create a key (`create`) and the usage plan quota (`quota_limit` requests per `quota_period`; null = no quota)."
  type = object({
    create       = optional(bool, true)
    quota_limit  = optional(number)
    quota_period = optional(string, "DAY")
  })
  default = {}

  validation {
    condition     = contains(["DAY", "WEEK", "MONTH"], var.api_key.quota_period)
    error_message = "api_key.quota_period must be DAY, WEEK or MONTH."
  }
}

variable "stage_name" {
  description = "API stage name; it is the first path segment of the URLs (HTTP API: `$default` for none)."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^([A-Za-z0-9_-]{1,128}|\\$default)$", var.stage_name))
    error_message = "stage_name must be 1..128 characters of A-Za-z0-9_- (or $default for an HTTP API)."
  }
}

variable "throttling_burst_limit" {
  description = "API stage throttling burst limit (requests)."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_burst_limit >= 0
    error_message = "throttling_burst_limit must be >= 0."
  }
}

variable "throttling_rate_limit" {
  description = "API stage throttling steady-state rate limit (requests per second)."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_rate_limit >= 0
    error_message = "throttling_rate_limit must be >= 0."
  }
}

variable "api_gateway_cloudwatch_role" {
  description = "REST API access and execution logs need API Gateway's account-level CloudWatch Logs role, one per account and region, which a fresh account does not have. `none` (default): the REST stage logs nothing, so the defaults apply anywhere; `existing`: the role is already set in this account and region (e.g. by a landing zone), REST logs on; `create`: this deployment sets it (only one stack per account and region should). HTTP APIs need no such role and always write access logs."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "existing", "create"], var.api_gateway_cloudwatch_role)
    error_message = "api_gateway_cloudwatch_role must be none, existing or create."
  }
}

variable "api_execution_logging_level" {
  description = "REST API execution logging level (OFF, ERROR, INFO); null is ERROR when api_gateway_cloudwatch_role is existing or create, OFF otherwise. The module creates the execution log group with retention."
  type        = string
  default     = null

  validation {
    condition     = var.api_execution_logging_level == null || contains(["OFF", "ERROR", "INFO"], coalesce(var.api_execution_logging_level, "-"))
    error_message = "api_execution_logging_level must be OFF, ERROR or INFO (or null)."
  }
}

################################################################################
# Alarms
################################################################################

variable "create_alarms" {
  description = "Create the CloudWatch alarms and the dashboard."
  type        = bool
  default     = true
}

variable "alarm_sns_topic_arns" {
  description = "SNS topics notified by the alarms; empty creates one encrypted topic (output sns_topic_arn). An encrypted topic's key policy must let cloudwatch.amazonaws.com use the key."
  type        = list(string)
  default     = []
}

variable "alarm_topic_encryption" {
  description = "Encryption of the alarm topic the module creates. By default a customer managed key of its own (rotation on) whose policy lets CloudWatch publish from this deployment's alarms. `create_kms_key = false` with `kms_key_arn` uses that key instead (its policy must allow cloudwatch.amazonaws.com kms:GenerateDataKey* and kms:Decrypt), or with `kms_key_arn = null` turns SSE off by explicit choice. Never alias/aws/sns: CloudWatch cannot use it, so alarms would notify nobody."
  type = object({
    create_kms_key = optional(bool, true)
    kms_key_arn    = optional(string)
  })
  default = {}

  validation {
    condition     = !(var.alarm_topic_encryption.create_kms_key && var.alarm_topic_encryption.kms_key_arn != null)
    error_message = "alarm_topic_encryption: set create_kms_key = false to use kms_key_arn (or drop kms_key_arn to let the module create the key)."
  }

  validation {
    condition     = !endswith(coalesce(var.alarm_topic_encryption.kms_key_arn, "-"), "alias/aws/sns")
    error_message = "alarm_topic_encryption.kms_key_arn must not be alias/aws/sns: its key policy cannot allow cloudwatch.amazonaws.com, so alarms would go to ALARM and notify nobody. Leave the default (the module creates a key CloudWatch may use), give a customer managed key that allows cloudwatch.amazonaws.com, or set kms_key_arn = null with create_kms_key = false for no encryption."
  }
}

variable "alarm_thresholds" {
  description = "Alarm thresholds: oldest message age in seconds (work queue and DLQ), API p95 latency in ms, worker errors per period, jobs failed per period, and the share (0..1) of worker.timeout the p99 duration may reach."
  type = object({
    queue_oldest_message_age_seconds = optional(number, 900)
    dlq_oldest_message_age_seconds   = optional(number, 600)
    api_latency_p95_ms               = optional(number, 2000)
    worker_errors                    = optional(number, 0)
    jobs_failed                      = optional(number, 0)
    worker_duration_timeout_ratio    = optional(number, 0.8)
  })
  default = {}

  validation {
    condition     = var.alarm_thresholds.worker_duration_timeout_ratio > 0 && var.alarm_thresholds.worker_duration_timeout_ratio <= 1
    error_message = "alarm_thresholds.worker_duration_timeout_ratio must be in (0, 1]."
  }
}

variable "alarm_period_seconds" {
  description = "Period of the alarms' metrics in seconds."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_period_seconds)
    error_message = "alarm_period_seconds must be 60, 300, 900 or 3600."
  }
}

################################################################################
# Completion events and callbacks
################################################################################

variable "events" {
  description = "Completion events: each terminal transition of a job (succeeded, completed_with_errors, failed, cancelled, expired) is published on EventBridge with source = `source`, detail-type \"Job Ended\" and the job resource as detail, without its presigned errors link or callback URL (anyone who may add rules to the bus receives it). `bus_name` null publishes on the account's default bus. `enabled = false` publishes nothing."
  type = object({
    enabled  = optional(bool, true)
    bus_name = optional(string)
    source   = optional(string, "async-jobs")
  })
  default = {}

  validation {
    condition     = var.events.bus_name == null || can(regex("^[A-Za-z0-9._-]{1,256}$", var.events.bus_name))
    error_message = "events.bus_name must be an event bus name (1-256 of A-Z a-z 0-9 . _ -), not an ARN; null means the default bus."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,256}$", var.events.source)) && !startswith(var.events.source, "aws.")
    error_message = "events.source must be 1-256 of A-Z a-z 0-9 . _ - and must not start with \"aws.\" (reserved for AWS services)."
  }
}

variable "callbacks" {
  description = "Per-job callbacks (the Callback-Url header of POST /jobs and POST /jobs/uploads): the job resource is POSTed, HMAC-signed over the timestamp, the event id and the body, to an https URL whose host and port are in `allowed_hosts` (an exact host or `*.example.com`, for port 443 unless the entry names another: `hooks.example.com:8443`); empty refuses every callback (400). Retried with exponential backoff on network errors, 408, 429 and 5xx up to `max_attempts`; each attempt ends after `timeout_seconds` from connection to last byte, however slowly the receiver answers; no redirect is followed. The signing secret is a Secrets Manager secret the module creates (its value generated by an ephemeral resource, never in Terraform state) unless `secret_arn` names one (a full or a partial ARN; the worker may decrypt it with the secret's own KMS key through Secrets Manager). `secret_version`: raise it by one to write a new generated key (rotation; receivers must accept the new key). `secret_recovery_days`: how long a deleted signing secret (destroy, rename, switching to `secret_arn`) can be restored; 0 deletes it at once. `allow_private_addresses` lets callbacks reach private, loopback and link-local addresses (off: SSRF guard, which also refuses every IPv6 form carrying an IPv4 address: mapped, compatible, NAT64, 6to4, Teredo). `ca_bundle_pem` adds CA certificates the worker trusts for callbacks besides the system's: for a test receiver with its own CA only."
  type = object({
    allowed_hosts           = optional(list(string), [])
    max_attempts            = optional(number) # null: the contract's default (contract.json)
    timeout_seconds         = optional(number) # null: the contract's default (contract.json)
    secret_arn              = optional(string)
    secret_version          = optional(number, 1)
    secret_recovery_days    = optional(number, 7)
    allow_private_addresses = optional(bool, false)
    ca_bundle_pem           = optional(string)
  })
  default = {}

  validation {
    condition     = var.callbacks.secret_version >= 1 && floor(var.callbacks.secret_version) == var.callbacks.secret_version
    error_message = "callbacks.secret_version must be a whole number >= 1: raise it by one to write a new signing key."
  }

  validation {
    condition     = var.callbacks.secret_recovery_days == 0 || (var.callbacks.secret_recovery_days >= 7 && var.callbacks.secret_recovery_days <= 30)
    error_message = "callbacks.secret_recovery_days must be 0 (delete the signing key at once) or 7..30 (Secrets Manager's recovery window)."
  }

  validation {
    condition = alltrue([
      for host in var.callbacks.allowed_hosts : can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(:[1-9][0-9]{0,4})?$", host)) && try(tonumber(split(":", host)[1]) <= 65535, true)
    ])
    error_message = "callbacks.allowed_hosts entries must be lower-case host names (\"hooks.example.com\") or wildcards (\"*.example.com\"), each for port 443 unless it names another port from 1 to 65535 (\"hooks.example.com:8443\"), without a scheme or path: callbacks are https only."
  }

  validation {
    condition     = var.callbacks.max_attempts == null || try(var.callbacks.max_attempts >= local.contract.settings.callback_max_attempts.minimum && var.callbacks.max_attempts <= local.contract.settings.callback_max_attempts.maximum && floor(var.callbacks.max_attempts) == var.callbacks.max_attempts, false)
    error_message = "callbacks.max_attempts must be a whole number from ${local.contract.settings.callback_max_attempts.minimum} to ${local.contract.settings.callback_max_attempts.maximum}, got ${coalesce(var.callbacks.max_attempts, "null")} (or null for the default)."
  }

  validation {
    condition     = var.callbacks.timeout_seconds == null || try(var.callbacks.timeout_seconds >= local.contract.settings.callback_timeout_seconds.minimum && var.callbacks.timeout_seconds <= local.contract.settings.callback_timeout_seconds.maximum, false)
    error_message = "callbacks.timeout_seconds must be between ${local.contract.settings.callback_timeout_seconds.minimum} and ${local.contract.settings.callback_timeout_seconds.maximum}, got ${coalesce(var.callbacks.timeout_seconds, "null")} (or null for the default)."
  }

  validation {
    condition     = var.callbacks.secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.callbacks.secret_arn))
    error_message = "callbacks.secret_arn must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)."
  }

  validation {
    condition     = var.callbacks.ca_bundle_pem == null || can(regex("^-----BEGIN CERTIFICATE-----", trimspace(coalesce(var.callbacks.ca_bundle_pem, "-"))))
    error_message = "callbacks.ca_bundle_pem must be PEM certificates (-----BEGIN CERTIFICATE-----)."
  }
}
