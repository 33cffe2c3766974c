// Package terraform holds no code. Its tests keep the Terraform in this
// directory consistent with the Go definitions it provisions for: every
// warehouse table of transforms.Tables is a BigQuery table reading its
// generated schema file, the Bigtable tables and families are those of
// enrichment.Layout, the Pub/Sub sources are the contract's platforms, and
// the pipeline parameters the environments launch the job with are
// parameters of the flex template.
package terraform
