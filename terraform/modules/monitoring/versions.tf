terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # disable_metric_validation of PromQL conditions: documented in 6.33.
      version = ">= 6.33.0, < 8.0.0"
    }
  }
}
