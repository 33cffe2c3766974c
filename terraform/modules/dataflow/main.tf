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
 * Pane rows carry the job's run_id (pipelines/options.go: --run_id). This
 * module sets it to "<job name>-<UTC time of the plan that creates the job>"
 * (a flag the template's metadata.json declares, with no regex)
 * (local.run_id) and ignores later changes to it (parameters["run_id"] in
 * ignore_changes), so:
 *   - an in-place update (Dataflow's update of the running job: new
 *     parameters or a new container_spec_gcs_path) keeps the run_id in state
 *     along with the job's name and window state, and its panes go on from
 *     the old job's, as they must: a new id would count the carried-over
 *     state a second time;
 *   - every creation gets a new run_id: a replacement (a new name, the
 *     environments' release variable, or any other ForceNew change), and also
 *     a plain terraform apply after the job failed or was cancelled (the
 *     provider then drops it from state, and the apply launches it again
 *     under the same name). A re-created job starts its windows from nothing,
 *     so under the old job's run_id dbt would take one job's pane of a window
 *     both wrote for the window's total; under its own, dbt adds them.
 * Terraform applies ignore_changes only to an update: a replacement plans the
 * new job from the configuration, so it takes the new timestamp. A job
 * created before this module set run_id keeps running without one (its
 * run_id is its name) until it is next re-created.
 *
 * The job starts from whatever spec is at var.template_gcs_path when it is
 * created. That includes a re-creation after a failure: if make template
 * has since overwritten that object, the re-created job runs the new code
 * under the old release. Give each release its own spec object (the
 * environments' template_object) to make a re-created job run its release's
 * code, and to roll back by applying the previous release and object.
 */

locals {
  # Unique to each creation of the job; kept by updates (ignore_changes
  # below). plantimestamp() is fixed for the whole plan, and is new at every
  # plan: ignore_changes hides the difference from a job that exists.
  # E.g. campaign-pulse-prod-streaming-r1-20250114-093005.
  run_id     = "${var.job_name}-${formatdate("YYYYMMDD-hhmmss", plantimestamp())}"
  parameters = merge(var.parameters, { run_id = local.run_id })
}

resource "google_dataflow_flex_template_job" "this" {
  provider = google-beta

  project                 = var.project_id
  region                  = var.region
  name                    = var.job_name
  container_spec_gcs_path = var.template_gcs_path
  parameters              = local.parameters

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
    # The worker settings read back empty for a Go job, and the run_id of a
    # job that exists must not change: see the top of this file.
    ignore_changes = [num_workers, max_workers, machine_type, network, subnetwork, staging_location, parameters["run_id"]]
  }
}
