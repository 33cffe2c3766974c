# Campaign Pulse. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
EVENTS ?= 200000
BENCH_EVENTS ?= 1000000
# A fuzz budget in executions, not seconds: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# -fuzztime expires while a worker is starved of CPU (golang/go#75804, fixed
# in Go 1.27; seen in this project's CI on FuzzMetricsCodec, no input written).
# A count has no deadline to race. 10000x is about 3-15 s a target here.
FUZZTIME ?= 10000x
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/campaignpulse/campaignpulse/transforms.PipelineVersion=$(VERSION)
BIN := bin
# The warehouse make run writes and dbt reads.
WAREHOUSE ?= warehouse/campaign_pulse.duckdb
# dbt runs from a virtualenv at .venv with pinned versions. The Python duckdb
# is pinned to the DuckDB the Go driver embeds (duckdb-go v2.10506.0 links
# DuckDB 1.5.6), so dbt opens the file the pipeline writes in the same
# storage format and never upgrades it under the pipeline.
VENV := .venv
DBT_CORE_VERSION := 1.11.16
DBT_DUCKDB_VERSION := 1.11.1
DUCKDB_PY_VERSION := 1.5.6
DBT := $(VENV)/bin/dbt
VENV_STAMP := $(VENV)/.pins-dbt-core-$(DBT_CORE_VERSION)-dbt-duckdb-$(DBT_DUCKDB_VERSION)-duckdb-$(DUCKDB_PY_VERSION)
# Production's dbt (dbt-bigquery) in its own virtualenv, so the tested local
# one never changes under it; the same dbt-core.
VENV_BQ := .venv-bigquery
DBT_BIGQUERY_VERSION := 1.11.3
VENV_BQ_STAMP := $(VENV_BQ)/.pins-dbt-core-$(DBT_CORE_VERSION)-dbt-bigquery-$(DBT_BIGQUERY_VERSION)

# Every go command builds Prism with the fixes in pipelines/prism (lost
# counter increments, repeated panes, splits that broke Dedup, ...; its
# README lists them): patch.sh writes a go.mod that replaces the Beam SDK by
# a patched copy under .build/prism.
PRISM_MODFILE := $(shell bash pipelines/prism/patch.sh)
ifeq ($(PRISM_MODFILE),)
$(error pipelines/prism/patch.sh failed: see its message above)
endif
export GOFLAGS := -modfile=$(PRISM_MODFILE) -tags=prism_patched
PRISM_INTERNAL := github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal
SDK_HARNESS := github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/harness
SDK_EXEC := github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec
PRISM_PATCH_PKGS := $(PRISM_INTERNAL) $(PRISM_INTERNAL)/jobservices $(PRISM_INTERNAL)/engine $(SDK_HARNESS) $(SDK_EXEC)
# The tests pipelines/prism adds or changes, one alternative each (unit checks
# that each matches one test, so a renamed one cannot pass by running nothing).
PRISM_PATCH_TESTS := TestBundlesReportingANewShortIDBeforeItsMetadataAllCount|TestSplitKeepsTheKeysThePrimaryStillHolds|TestBundlesWithTimersAreNotSplit|TestStateWritesDoNotWaitAndFlushDoes|TestSplitPrimaryDoesNotOverwriteAReleasedKeysState|TestSDFOutputWatermarkFollowsTheInputOnceItsWorkIsDone|TestSDFOutputWatermarkFollowsTheEstimateWhileItReads|^TestPCollection$$|TestPCollectionEncodesOnlyForTheDataSampler|TestPullDecoderSlicesBuffers

.PHONY: run test unit prism-patch-test cgo-check fuzz bench vet build run-streaming template template-check tf-check launch clean venv-bigquery

## run: generate EVENTS events, run the pipeline on Prism into warehouse/campaign_pulse.duckdb, print the summary, then dbt build the marts
run: build venv
	$(BIN)/campaignpulse --events=$(EVENTS) --warehouse=$(WAREHOUSE)
	@$(MAKE) --no-print-directory dbt

## test: vet, unit and integration tests (Prism, DuckDB, the Bigtable and Pub/Sub emulators, pstest, dbt, the Dataflow dry run), a short fuzz of every fuzz target, then tf-check
test: vet unit fuzz tf-check

# DuckDB's Go driver is cgo. Without a C and C++ compiler go build turns cgo
# off by itself and builds the warehouse-less binary, which fails only when
# it runs; say what to install up front instead.
cgo-check:
	@[ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$(set -- $$($(GO) env CC); echo $$1)" >/dev/null \
		&& command -v "$$(set -- $$($(GO) env CXX); echo $$1)" >/dev/null || { \
		echo "DuckDB's Go driver needs cgo: install a C and a C++ compiler (Debian/Ubuntu: apt-get install build-essential) and run make again"; exit 1; }

build: cgo-check
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

vet:
	@files=$$(git ls-files '*.go') && [ -n "$$files" ] || { echo "make vet: needs a git checkout (git ls-files lists no Go files)"; exit 1; }; \
	test -z "$$(gofmt -l $$files)" || { echo "gofmt needed:"; gofmt -l $$files; exit 1; }
	$(GO) vet ./...

# unit needs dbt: pipelines/dbt_e2e_test.go runs dbt build on the pipeline's output.
# The pipelines package runs for 5-6 minutes on a quiet 2-core machine (its
# Prism, Pub/Sub and dbt end-to-end tests); while other packages compile on a
# cold build cache it took over 10, go test's default timeout per package.
unit: venv cgo-check
	$(GO) test -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory prism-patch-test

# The tests of the Prism and SDK patches (pipelines/prism), in the SDK's packages.
prism-patch-test:
	@want=$$(echo '$(PRISM_PATCH_TESTS)' | tr '|' '\n' | wc -l); \
	got=$$($(GO) test -list '$(PRISM_PATCH_TESTS)' $(PRISM_PATCH_PKGS) | grep -c '^Test'); \
	[ "$$got" -eq "$$want" ] || { echo "prism-patch-test: $$got tests match PRISM_PATCH_TESTS, want its $$want: a patch test was renamed or not copied (pipelines/prism/patch.sh)"; exit 1; }
	$(GO) test -count=1 -run '$(PRISM_PATCH_TESTS)' $(PRISM_PATCH_PKGS)

# Each fuzz target runs for FUZZTIME; go test -fuzz takes one target at a time.
fuzz:
	@for p in ./transforms/ ./pipelines/; do \
		targets=$$($(GO) test -list 'Fuzz.*' $$p | grep ^Fuzz) || { echo "fuzz: no fuzz target listed in $$p"; exit 1; }; \
		for t in $$targets; do \
			echo "fuzz $$p $$t ($(FUZZTIME))"; \
			$(GO) test -run=XXX -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$p || exit 1; \
		done; \
	done

## bench: Go micro-benchmarks (transforms, enrichment lookups), then the pipeline on Prism without and with enrichment against the plain-Go limit over BENCH_EVENTS events
bench: build
	$(GO) test -run=XXX -bench=. -benchmem ./transforms/ ./enrichment/
	$(BIN)/bench --events=$(BENCH_EVENTS)

# make run-streaming: RATE events/s for SECONDS s (the Pub/Sub emulator delivers about 2,000
# messages/s per streaming-pull stream: PUBSUB_STREAMS per source subscription, 6 sources).
RATE ?= 5000
SECONDS ?= 30
PUBSUB_STREAMS ?= 4

## run-streaming: start the Pub/Sub and Bigtable emulators, run the pipeline as a streaming job on Prism, publish RATE events/s for SECONDS s, print rates and warehouse freshness, drain, reconcile
run-streaming: build
	$(BIN)/campaignpulse --streaming=$(SECONDS)s --rate=$(RATE) --pubsub_streams=$(PUBSUB_STREAMS) --warehouse=warehouse/streaming.duckdb

# --- Production: Terraform checks, the flex template, launching it ---------------------------
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
TERRAFORM ?= $(or $(shell command -v terraform 2>/dev/null),$(GOBIN_DIR)/terraform)
TFLINT ?= $(GOBIN_DIR)/tflint
CHECKOV ?= .venv-checkov/bin/checkov

## tf-check: terraform fmt, tflint (bundled terraform rules), checkov, and the Go tests tying terraform/ to the Go definitions
## (installs tflint and checkov first when missing: terraform/tools.sh; Terraform itself must be installed)
tf-check:
	@bash terraform/tools.sh
	$(TERRAFORM) fmt -check -recursive -diff terraform/
	cd terraform && $(TFLINT) --recursive --config="$$PWD/.tflint.hcl" --format=compact
	$(CHECKOV) --directory terraform --framework terraform --skip-download --compact --quiet
	$(GO) test -count=1 ./terraform/
	@echo "tf-check: terraform validate/plan need the Google provider, which cannot be downloaded here: not run (see terraform/README.md)"

## template-check: the flex template's metadata.json against the pipeline's flags, and the Dataflow
## dry run of the production graph against templates/testdata/dataflow_job.golden, the static template
## binary, and make template's steps (offline; seconds once built, a few minutes on a cold build cache)
template-check:
	$(GO) test -count=1 ./templates/

# make template / make launch: the flex template. Values come from the Terraform outputs
# (terraform -chdir=terraform/environments/prod output): PROJECT, REGION, BUCKET=template_bucket,
# IMAGE=image; launch also SERVICE_ACCOUNT=worker_service_account, STAGING_BUCKET, TEMP_BUCKET.
PROJECT ?=
REGION ?=
BUCKET ?=
IMAGE ?=
TAG ?= $(VERSION)
TEMPLATE_PATH ?= gs://$(BUCKET)/campaign-pulse.json
SERVICE_ACCOUNT ?=
STAGING_BUCKET ?=
TEMP_BUCKET ?=
SUBNETWORK ?=
MAX_WORKERS ?= 10
JOB ?= campaign-pulse-$(shell date -u +%Y%m%d-%H%M%S)
# Pipeline flags, name=value separated by ';' (values may hold commas), e.g.
# PARAMETERS='source=pubsub;subscriptions=projects/p/subscriptions/a,projects/p/subscriptions/b'
PARAMETERS ?=
need = $(if $($(1)),,$(error make $@: set $(1)=... ($(2))))

## template: build the launcher image with Cloud Build and publish the flex template spec to gs://BUCKET
template:
	$(call need,PROJECT,the Google Cloud project id)
	$(call need,REGION,the Dataflow region such as europe-west1)
	$(call need,BUCKET,the template bucket: terraform output template_bucket)
	$(call need,IMAGE,the image path without tag: terraform output image)
	@case "$(TAG)" in *-dirty) echo "make template: the tree has uncommitted changes (TAG=$(TAG)): commit them, or name the image TAG=..." >&2; exit 1;; esac
	@if gcloud artifacts docker images describe $(IMAGE):$(TAG) --project=$(PROJECT) >/dev/null 2>&1; then \
		if [ "$(TAG)" != "$(VERSION)" ]; then \
			echo "make template: $(IMAGE):$(TAG) exists and the repository's tags are immutable: choose another TAG" >&2; \
			exit 1; \
		fi; \
		echo "template: $(IMAGE):$(TAG) exists, built from this commit: not rebuilt (the repository's tags are immutable)"; \
	else \
		set -x; \
		gcloud builds submit --project=$(PROJECT) --region=$(REGION) \
			--config=templates/cloudbuild.yaml --ignore-file=templates/.gcloudignore \
			--substitutions=_IMAGE=$(IMAGE):$(TAG),_VERSION=$(VERSION) . ; \
	fi
	gcloud dataflow flex-template build $(TEMPLATE_PATH) --project=$(PROJECT) \
		--image=$(IMAGE):$(TAG) --sdk-language=GO --metadata-file=templates/metadata.json
	@echo "template: $(TEMPLATE_PATH) -> $(IMAGE):$(TAG)"

## launch: start a streaming job from the published template (terraform apply does this too)
launch:
	$(call need,PROJECT,the Google Cloud project id)
	$(call need,REGION,the Dataflow region)
	$(call need,BUCKET,the template bucket: terraform output template_bucket)
	$(call need,SERVICE_ACCOUNT,the worker: terraform output worker_service_account)
	$(call need,STAGING_BUCKET,terraform output staging_bucket)
	$(call need,TEMP_BUCKET,terraform output temp_bucket)
	gcloud dataflow flex-template run $(JOB) --project=$(PROJECT) --region=$(REGION) \
		--template-file-gcs-location=$(TEMPLATE_PATH) \
		--service-account-email=$(SERVICE_ACCOUNT) \
		--staging-location=gs://$(STAGING_BUCKET)/staging --temp-location=gs://$(TEMP_BUCKET)/tmp \
		--enable-streaming-engine --disable-public-ips --max-workers=$(MAX_WORKERS) \
		$(if $(SUBNETWORK),--subnetwork=$(SUBNETWORK)) \
		$(if $(PARAMETERS),--parameters='^;^$(PARAMETERS)')

# --- The warehouse: schemas from the Go row types, dbt -----------------------------------------
.PHONY: schemas venv dbt

## schemas: regenerate terraform/schemas/*.json and dbt's sources.yml from transforms/rows.go
schemas:
	$(GO) run ./cmd/schemagen

# need_python: the shell check of a virtualenv target ($(1)) that python3 is
# 3.10 or newer, dbt-core's floor.
need_python = command -v python3 >/dev/null && python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "make $(1): python3 3.10 or newer is needed for dbt $(DBT_CORE_VERSION)"; exit 1; }

## venv: the virtualenv .venv with the pinned dbt-core, dbt-duckdb and duckdb
venv: $(VENV_STAMP)

$(VENV_STAMP):
	@$(call need_python,venv)
	test -x $(VENV)/bin/pip || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		"dbt-core==$(DBT_CORE_VERSION)" "dbt-duckdb==$(DBT_DUCKDB_VERSION)" "duckdb==$(DUCKDB_PY_VERSION)"
	rm -f $(VENV)/.pins-* && touch $@

## venv-bigquery: the virtualenv .venv-bigquery with the pinned dbt-core and dbt-bigquery (production)
venv-bigquery: $(VENV_BQ_STAMP)

$(VENV_BQ_STAMP):
	@$(call need_python,venv-bigquery)
	test -x $(VENV_BQ)/bin/pip || python3 -m venv $(VENV_BQ)
	$(VENV_BQ)/bin/pip install --quiet --disable-pip-version-check \
		"dbt-core==$(DBT_CORE_VERSION)" "dbt-bigquery==$(DBT_BIGQUERY_VERSION)"
	rm -f $(VENV_BQ)/.pins-* && touch $@

# --full-refresh: the pipeline's --reset (make run's default) empties its
# tables, so the incremental marts are rebuilt rather than merged with the
# previous run's hours.
DBT_LOCAL = cd dbt && CAMPAIGN_PULSE_WAREHOUSE="$(abspath $(WAREHOUSE))" DBT_SEND_ANONYMOUS_USAGE_STATS=false ../$(DBT)
# A campaign id may hold control characters (a line break, a terminal escape): shown as U+FFFD.
TOP_CAMPAIGNS = select regexp_replace(r.campaign_id, '\p{Cc}', '�', 'g') as campaign_id, r.currency, round(r.conversion_value, 2) as conversion_value, r.conversions, \
	round(100 * f.view_to_conversion_rate, 2) as view_to_conv_pct, r.budget_status \
	from {{ ref('mart_campaign_roi') }} r join {{ ref('fct_funnel') }} f on r.campaign_id = f.campaign_id \
	order by r.conversion_value desc, r.campaign_id

## dbt: dbt build --target local on WAREHOUSE (every model and test, timed), then the top campaigns from the marts
dbt: venv
	@echo; echo "== dbt build --target local ($(WAREHOUSE))"
	@set -o pipefail; start=$$(date +%s%N); \
	( $(DBT_LOCAL) build --target local --profiles-dir . --full-refresh ) | grep -vE ' (START|OK created|OK loaded|PASS) '; rc=$$?; \
	awk -v ns=$$(( $$(date +%s%N) - start )) 'BEGIN { printf "dbt build time: %.1f s\n", ns / 1e9 }'; exit $$rc
	@echo; echo "top campaigns by conversion value (dbt marts mart_campaign_roi, fct_funnel):"
	@$(DBT_LOCAL) show --target local --profiles-dir . --quiet --limit 5 --inline "$(TOP_CAMPAIGNS)"

clean:
	rm -rf $(BIN) warehouse .bench .build
