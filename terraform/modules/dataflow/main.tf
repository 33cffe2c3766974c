/**
 * The Campaign Pulse streaming job, launched from the flex template that
 * `make template` publishes. Streaming Engine keeps window state and shuffle
 * in the Dataflow service (smaller workers, faster autoscaling, updates
 * without losing state); workers get private IPs only; the launcher and the
 * workers run as the least-privilege worker account.
 *
 * A streaming job never finishes: Terraform treats it as existing while it
 * runs, and recreates it if it fails or is cancelled. Changing an immutable
 * argument (enable_streaming_engine, region, the name, ...) replaces the
 * job, draining the old one first (on_delete = drain).
 *
 * The worker settings (num_workers, max_workers, machine_type, network,
 * subnetwork, staging_location) are ignored after the job is created. The
 * provider reads them back from the options the SDK wrote into the job
 * (sdkPipelineOptions.options), and the Go SDK writes none of them there (it
 * puts them in the worker pool: beam/runners/dataflow/dataflowlib/job.go).
 * So each would read back empty and differ from this configuration at every
 * plan: num_workers and max_workers force a replacement under the same name,
 * the others an in-place update, at every apply. A new release (a new job)
 * takes their current values; to change a running job's worker limit, use
 * gcloud dataflow jobs update-options --max-num-workers.
 *
 * Pane rows carry the job's run_id (by default the job name): an update keeps
 * the name and the window state, so its panes go on from the old job's. A
 * replacement starts its windows from nothing, so it needs a new name (the
 * environments' release variable) or a new parameters.run_id: under the same
 * run_id dbt would take one job's pane of a window both wrote for the
 * window's total.
 */

resource "google_dataflow_flex_template_job" "this" {
  provider = google-beta

  project                 = var.project_id
  region                  = var.region
  name                    = var.job_name
  container_spec_gcs_path = var.template_gcs_path
  parameters              = var.parameters

  enable_streaming_engine = true
  ip_configuration        = "WORKER_IP_PRIVATE"
  network                 = var.network
  subnetwork              = var.subnetwork
  service_account_email   = var.service_account_email
  staging_location        = var.staging_location
  temp_location           = var.temp_location
  machine_type            = var.machine_type
  num_workers             = var.num_workers
  max_workers             = var.max_workers
  additional_experiments  = var.additional_experiments
  kms_key_name            = var.kms_key_name
  on_delete               = var.on_delete
  labels                  = merge(var.labels, { component = "dataflow" })

  lifecycle {
    # Read back empty for a Go job: see the top of this file.
    ignore_changes = [num_workers, max_workers, machine_type, network, subnetwork, staging_location]
  }
}
