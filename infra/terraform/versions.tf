terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.6"
    }
  }

  # State lives in S3 with locking; configure per environment:
  #   terraform init -backend-config=backend.production.hcl
  # (bucket, key, region, dynamodb_table or use_lockfile, encrypt = true, kms_key_id).
  backend "s3" {}
}
