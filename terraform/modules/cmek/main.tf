/**
 * Customer-managed encryption keys, optional: with kms_key_name set, every
 * Google service agent that encrypts or decrypts this project's data with the
 * key (Pub/Sub topics, the BigQuery dataset, the buckets, the Bigtable
 * cluster, the Artifact Registry repository, the Dataflow job's state and
 * its worker disks) may use it. The environments make every module that
 * takes kms_key_name depend on this one, so the grants exist before the
 * first encrypted resource is created. The key ring and key are not created
 * here: a security team usually owns them, in another project.
 */

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  n = data.google_project.this.number
  agents = {
    pubsub            = "serviceAccount:service-${local.n}@gcp-sa-pubsub.iam.gserviceaccount.com"
    bigquery          = "serviceAccount:bq-${local.n}@bigquery-encryption.iam.gserviceaccount.com"
    storage           = "serviceAccount:service-${local.n}@gs-project-accounts.iam.gserviceaccount.com"
    bigtable          = "serviceAccount:service-${local.n}@gcp-sa-bigtable.iam.gserviceaccount.com"
    artifact_registry = "serviceAccount:service-${local.n}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    dataflow          = "serviceAccount:service-${local.n}@dataflow-service-producer-prod.iam.gserviceaccount.com"
    compute           = "serviceAccount:service-${local.n}@compute-system.iam.gserviceaccount.com"
  }
  granted = var.kms_key_name == null ? {} : { for s in var.services : s => local.agents[s] }
}

resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = local.granted

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}
