/**
 * Bigtable for the enrichment side-lookup: one instance with one autoscaled
 * cluster, the tables and column families of enrichment.Layout, and each
 * family's garbage-collection rule.
 */

locals {
  families = merge([
    for t, spec in var.tables : {
      for f, gc in spec.column_families : "${t}/${f}" => merge(gc, { table = t, family = f })
    }
  ]...)

  gc_rules = {
    for k, f in local.families : k => merge(
      length(compact([f.max_versions > 0 ? "v" : "", f.max_age != null ? "a" : ""])) > 1 ? { mode = "union" } : {},
      {
        rules = concat(
          f.max_age != null ? [{ max_age = f.max_age }] : [],
          f.max_versions > 0 ? [{ max_version = f.max_versions }] : [],
        )
      },
    )
  }
}

resource "google_bigtable_instance" "this" {
  project             = var.project_id
  name                = var.instance_name
  display_name        = coalesce(var.display_name, var.instance_name)
  deletion_protection = var.deletion_protection
  labels              = merge(var.labels, { component = "bigtable" })

  cluster {
    cluster_id   = "${var.instance_name}-c1"
    zone         = var.zone
    storage_type = var.storage_type
    kms_key_name = var.kms_key_name

    autoscaling_config {
      min_nodes  = var.min_nodes
      max_nodes  = max(var.min_nodes, var.max_nodes)
      cpu_target = var.cpu_target
    }
  }
}

resource "google_bigtable_table" "this" {
  for_each = var.tables

  project             = var.project_id
  instance_name       = google_bigtable_instance.this.name
  name                = each.key
  deletion_protection = var.deletion_protection ? "PROTECTED" : "UNPROTECTED"

  dynamic "column_family" {
    for_each = each.value.column_families
    content {
      family = column_family.key
    }
  }
}

# One GC policy per family, as the serialized gc_rules the provider prefers
# (mode/max_age/max_version are older and drift-prone). A family with both
# rules drops a cell when either applies (union). ABANDON: a replicated
# instance cannot delete a GC rule, and removing the resource should never
# relax collection anyway.
resource "google_bigtable_gc_policy" "this" {
  for_each = local.families

  project         = var.project_id
  instance_name   = google_bigtable_instance.this.name
  table           = google_bigtable_table.this[each.value.table].name
  column_family   = each.value.family
  deletion_policy = "ABANDON"
  gc_rules        = jsonencode(local.gc_rules[each.key])
}
