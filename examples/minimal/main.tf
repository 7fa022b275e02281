provider "aws" {
  region = "us-east-1"
}

module "async_jobs" {
  source = "../../"

  name = "async-jobs"
}
