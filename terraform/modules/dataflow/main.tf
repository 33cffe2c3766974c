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
 * Terraform never updates the running job in place: every argument an
 * update would send is in ignore_changes, and a change to any of them
 * replaces the job instead (replace_triggered_by terraform_data.launch,
 * whose input is those arguments as configured), draining the old one
 * first. The provider builds an update's launch request from the job's
 * state, and reads the worker settings (num_workers, max_workers,
 * machine_type, network, subnetwork, staging_location) back from the options
 * the SDK wrote into the job (sdkPipelineOptions.options), where the Go SDK
 * writes none of them (it puts them in the worker pool:
 * beam/runners/dataflow/dataflowlib/job.go). So they read back empty, and an
 * update (a new template_object, new parameters, new labels) would relaunch
 * the job with Dataflow's defaults in their place: no worker ceiling (the
 * cost ceiling gone), the default network (no private subnetwork), the
 * temp bucket for staging. Unignored, they would also differ from this
 * configuration at every plan. A replacement is created from this
 * configuration, with all of them. To change a running job's worker limit
 * without replacing it, use gcloud dataflow jobs update-options
 * --max-num-workers, and leave max_workers here as it is: a new value
 * replaces the job at the next apply (the next job then starts with it).
 *
 * Pane rows carry the job's run_id (pipelines/options.go: --run_id). This
 * module sets it to "<job name>-<UTC time of the plan that creates the job>"
 * (a flag the template's metadata.json declares, with no regex)
 * (local.run_id), which the job keeps (parameters are in ignore_changes,
 * and terraform_data.launch holds var.parameters, without it). Every
 * creation gets a new run_id: a replacement (a new name, the environments'
 * release variable, a new template_object or parameters, any other change
 * above), and also a plain terraform apply after the job failed or was
 * cancelled (the provider then drops it from state, and the apply launches
 * it again under the same name). A re-created job starts its windows from
 * nothing, so under the old job's run_id dbt would take one job's pane of a
 * window both wrote for the window's total; under its own, dbt adds them.
 * Terraform applies ignore_changes only to an update: a replacement plans
 * the new job from the configuration, so it takes the new timestamp. A job
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

  # What the job is launched with that an update would send (all but its
  # run_id): the job takes each from here, and a change to any replaces it.
  launch = {
    container_spec_gcs_path = var.template_gcs_path
    parameters              = var.parameters
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
    labels                  = merge(var.labels, { component = "dataflow" })
  }
}

# Changes when local.launch does, which replaces the job (its lifecycle).
resource "terraform_data" "launch" {
  input = local.launch
}

resource "google_dataflow_flex_template_job" "this" {
  provider = google-beta

  project                 = var.project_id
  region                  = var.region
  name                    = var.job_name
  enable_streaming_engine = true
  on_delete               = var.on_delete
  parameters              = local.parameters

  container_spec_gcs_path = local.launch.container_spec_gcs_path
  ip_configuration        = local.launch.ip_configuration
  network                 = local.launch.network
  subnetwork              = local.launch.subnetwork
  service_account_email   = local.launch.service_account_email
  staging_location        = local.launch.staging_location
  temp_location           = local.launch.temp_location
  machine_type            = local.launch.machine_type
  num_workers             = local.launch.num_workers
  max_workers             = local.launch.max_workers
  additional_experiments  = local.launch.additional_experiments
  kms_key_name            = local.launch.kms_key_name
  labels                  = local.launch.labels

  lifecycle {
    # No update in place (it would relaunch the job without its worker
    # settings), and the run_id of a job that exists never changes: a
    # change replaces the job. See the top of this file.
    ignore_changes = [
      parameters, container_spec_gcs_path, ip_configuration, network, subnetwork, service_account_email, staging_location,
      temp_location, machine_type, num_workers, max_workers, additional_experiments, kms_key_name, labels,
    ]
    replace_triggered_by = [terraform_data.launch]
  }
}
