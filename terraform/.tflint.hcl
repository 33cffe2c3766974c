# tflint for Campaign Pulse. Only the terraform ruleset bundled in the tflint
# binary: CI has no network for plugin downloads, so the google ruleset (which
# would check argument values against the provider) is not used.
config {
  call_module_type = "local"
  force            = false
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# Beyond the recommended preset: the terraform-google-modules conventions.
rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_typed_variables" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}
