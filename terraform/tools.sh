#!/usr/bin/env bash
# Installs the tools of make tf-check when they are missing or at another
# version: tflint (go install, compiles ~5 min on 2 cores) and checkov (PyPI,
# in .venv-checkov/, ~1 min); terraform itself must be installed. A machine
# that has them at the pinned versions skips every slow step. Run from the repo root;
# .ci/run and make tf-check both call it.
set -euo pipefail
TFLINT_VERSION=0.64.0
CHECKOV_VERSION=3.3.30
TERRAFORM_VERSION=1.11.4
GOBIN="$(go env GOPATH)/bin"

# Terraform cannot be built with go install (its go.mod replaces modules by
# folders the module proxy leaves out), and HashiCorp's downloads are not a
# package registry, so it is a prerequisite, like the Cloud SDK.
if ! command -v terraform >/dev/null && ! [ -x "$GOBIN/terraform" ]; then
	echo "tools: terraform is not installed; make tf-check needs Terraform $TERRAFORM_VERSION or newer:" \
		"https://developer.hashicorp.com/terraform/install" >&2
	exit 1
fi
# (Versions are read into variables first: grep -q closing a pipe early would
# fail the pipeline under pipefail.)
have_tflint="$("$GOBIN/tflint" --version 2>/dev/null || true)"
have_checkov="$(.venv-checkov/bin/checkov --version 2>/dev/null || true)"
if [[ "$have_tflint" != *"version $TFLINT_VERSION"* ]]; then
	echo "tools: installing tflint $TFLINT_VERSION (go install, a few minutes)"
	go install "github.com/terraform-linters/tflint@v$TFLINT_VERSION"
fi
if [[ "$have_checkov" != "$CHECKOV_VERSION" ]]; then
	echo "tools: installing checkov $CHECKOV_VERSION into .venv-checkov/"
	rm -rf .venv-checkov
	python3 -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
