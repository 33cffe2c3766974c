terraform {
  # 1.9: variables.tf validates name_prefix against project_id, and
  # kms_key_name against region and bigquery_location (a validation that reads
  # other variables). The modules need only 1.5 (plantimestamp()).
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0.0, < 8.0.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0.0, < 8.0.0"
    }
  }

  # State in a GCS bucket, partial configuration: the bucket is given at init,
  #   terraform init -backend-config="bucket=<your state bucket>"
  # (create it once: gcloud storage buckets create gs://<bucket> --location=<region>
  # --uniform-bucket-level-access --public-access-prevention, then enable versioning).
  backend "gcs" {
    prefix = "campaign-pulse/dev"
  }
}
