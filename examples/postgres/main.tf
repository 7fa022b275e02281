# The pattern's reason to exist: a small PostgreSQL shared with other applications, written to
# by bulk jobs at a pace it can take. Each worker invocation holds one connection, so
# worker_maximum_concurrency is the most connections the jobs ever use.

provider "aws" {
  region = "us-east-1"
}

# Rules as their own resources only: inline rules next to rule resources fight over the group
# (each plan would remove the other's rules).
resource "aws_security_group" "worker" {
  name_prefix = "async-jobs-worker-"
  description = "async-jobs worker: reaches the database, S3 and SQS"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "worker_to_aws" {
  description       = "HTTPS to S3, SQS, EventBridge and the AWS APIs (NAT or VPC endpoints)"
  security_group_id = aws_security_group.worker.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_security_group" "database" {
  name_prefix = "async-jobs-database-"
  description = "PostgreSQL: reachable from the async-jobs worker only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "worker_to_database" {
  description                  = "PostgreSQL"
  security_group_id            = aws_security_group.worker.id
  referenced_security_group_id = aws_security_group.database.id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "database_from_worker" {
  description                  = "PostgreSQL from the worker"
  security_group_id            = aws_security_group.database.id
  referenced_security_group_id = aws_security_group.worker.id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

resource "aws_db_subnet_group" "this" {
  name_prefix = "async-jobs-"
  subnet_ids  = var.subnet_ids
}

# TLS only: the worker's sslmode=require is then the floor, not a preference.
resource "aws_db_parameter_group" "this" {
  name_prefix = "async-jobs-pg16-"
  family      = "postgres16"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "5000"
  }
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_157:single-AZ keeps the example small; set multi_az for production
  #checkov:skip=CKV_AWS_118:enhanced monitoring needs a monitoring role this example does not create
  #checkov:skip=CKV_AWS_353:Performance Insights is a cost choice left to the deployment
  #checkov:skip=CKV_AWS_354:no Performance Insights, so no key for it
  identifier_prefix = "async-jobs-"
  engine            = "postgres"
  engine_version    = "16"
  instance_class    = "db.t4g.micro"
  allocated_storage = 20
  storage_encrypted = true
  db_name           = "app"
  username          = "app_admin"
  # the admin password lives in Secrets Manager, managed and rotated by RDS
  manage_master_user_password = true

  # the worker authenticates with IAM tokens (rds-db:connect), no password to store
  iam_database_authentication_enabled = true
  db_subnet_group_name                = aws_db_subnet_group.this.name
  parameter_group_name                = aws_db_parameter_group.this.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  publicly_accessible                 = false
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  skip_final_snapshot                 = false
  # RDS refuses a final snapshot whose name exists: a constant name fails every destroy after
  # the first. The instance's creation time keeps each one's final snapshot apart.
  final_snapshot_identifier = "async-jobs-final-${formatdate("YYYYMMDDhhmmss", terraform_data.created.output)}"
}

# When this example was first applied: plantimestamp() is new at every plan, so it is ignored
# once stored (a stable name, an empty second plan).
resource "terraform_data" "created" {
  input = plantimestamp()

  lifecycle {
    ignore_changes = [input]
  }
}

module "async_jobs" {
  source = "../../"

  name = "async-jobs-pg"

  # Created once by the database owner (RDS IAM auth needs the rds_iam role):
  #   CREATE USER async_jobs_loader; GRANT rds_iam TO async_jobs_loader;
  #   CREATE TABLE public.job_records (job_id text NOT NULL, record_index bigint NOT NULL,
  #     record jsonb NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
  #     PRIMARY KEY (job_id, record_index));
  #   GRANT SELECT, INSERT, UPDATE ON public.job_records TO async_jobs_loader;
  sink = {
    type = "postgres"
    postgres = {
      host           = aws_db_instance.this.address
      port           = aws_db_instance.this.port
      database       = aws_db_instance.this.db_name
      user           = "async_jobs_loader"
      table          = "job_records"
      auth           = "iam"
      db_resource_id = aws_db_instance.this.resource_id
      # with a CA bundle the worker checks the server's certificate and name, not only encrypts
      sslmode     = var.database_ca_bundle == null ? "require" : "verify-full"
      sslrootcert = var.database_ca_bundle
    }
  }

  vpc_config = {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.worker.id]
  }

  # one connection per concurrent worker invocation: the cap that protects the database
  worker_maximum_concurrency = var.worker_concurrency
}
