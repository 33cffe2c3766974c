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

# BigQuery's and Cloud Storage's encryption agents are created on first use,
# not when their APIs are enabled: on a fresh project a grant to the agent's
# email alone fails ("service account does not exist"). Reading them through
# their APIs creates them first. Read only with a key, which is when they
# are granted.
data "google_bigquery_default_service_account" "this" {
  count   = var.kms_key_name == null ? 0 : 1
  project = var.project_id
}

data "google_storage_project_service_account" "this" {
  count   = var.kms_key_name == null ? 0 : 1
  project = var.project_id
}

# Bigtable's and Artifact Registry's agents are created when the service is
# first used (Artifact Registry's with the project's first repository), and
# the encrypted instance and repository are that first use: their grants must
# exist before. Generating the service identity creates the agent (what
# `gcloud beta services identity create` does, as both services' CMEK pages
# say); the resource exists only in the beta provider. Pub/Sub's, Dataflow's
# and Compute Engine's agents are created when their APIs are enabled.
resource "google_project_service_identity" "agents" {
  provider = google-beta
  for_each = var.kms_key_name == null ? {} : { for s, api in local.identity_apis : s => api if contains(var.services, s) }

  project = var.project_id
  service = each.value
}

locals {
  identity_apis = {
    bigtable          = "bigtableadmin.googleapis.com"
    artifact_registry = "artifactregistry.googleapis.com"
  }
  n = data.google_project.this.number
  agents = {
    pubsub            = "serviceAccount:service-${local.n}@gcp-sa-pubsub.iam.gserviceaccount.com"
    bigquery          = one(data.google_bigquery_default_service_account.this[*].member)
    storage           = one([for a in data.google_storage_project_service_account.this : "serviceAccount:${a.email_address}"])
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

  # The members name the agents by their documented emails; these create
  # the two that may not exist yet.
  depends_on = [google_project_service_identity.agents]
}
