# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
# Everything else here is what those two are made of.

.PHONY: demo test tools build lint unit crds image

TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

# Build the rig's tools (pinned kube-apiserver, etcd, kubectl, helm, promtool, kstatus, moto,
# the IAM judge) once.
tools:
	hack/tools.sh

build:
	cargo build --workspace --bins

# The operator's image, without a registry (hack/image.sh): target/image/authedapi-<version>.oci.tar
# with its SBOM. Load it with `ctr -n k8s.io images import`, `kind load image-archive`, or
# push it with `skopeo copy oci-archive:... docker://...`.
image: tools
	hack/image.sh

# The operator's main job, locally: control plane + AWS emulator + operator + the
# example; prints its status, then keeps running for kubectl until Ctrl-C.
demo: tools build
	$(TARGET_DIR)/debug/authedapi-local --operator $(TARGET_DIR)/debug/authedapi $(ARGS)

# Every test, against the real rig: formatting, lints, unit and integration tests, and
# the demo run end to end. The rig's IAM judges record every decision; the report at the
# end fails when a statement of the shipped IAM policy granted nothing over the suite.
JUDGE_RECORDS := $(abspath $(TARGET_DIR))/iam-judge-records
test: tools lint image
	rm -rf $(JUDGE_RECORDS)
	AUTHEDAPI_JUDGE_RECORDS=$(JUDGE_RECORDS) cargo test --workspace --features authedapi/test-hooks
	AUTHEDAPI_JUDGE_RECORDS=$(JUDGE_RECORDS) $(MAKE) --no-print-directory demo ARGS=--exit
	cargo run -q -p authedapi-rig --bin authedapi-judge-report -- --records $(JUDGE_RECORDS)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

# Regenerate crds/ from the Rust types.
crds:
	cargo run -q --bin authedapi -- crd --dir crds

.PHONY: deploy

# The narrowest policy that runs the seed: the examples' account, and the functions
# examples/tenant.yaml allows (tests/iam_policy.rs renders the same).
SEED_POLICY_ARGS := --account-id 123456789012 \
	--allowed-function 'arn:aws:lambda:us-east-1:123456789012:function:api-auth-auth0-*'

# Refresh the chart's copy of the CRDs, render deploy/ (plain manifests) from the chart,
# and the AWS IAM policies (for the default cluster id) from the operator.
deploy: tools
	cp crds/*.yaml charts/authedapi/crds/
	hack/render-deploy.sh
	cargo run -q --bin authedapi -- iam-policy > deploy/aws-iam-policy.json
	cargo run -q --bin authedapi -- iam-policy $(SEED_POLICY_ARGS) > deploy/aws-iam-policy-seed.json
	cargo run -q --bin authedapi -- iam-policy --boundary > deploy/aws-permissions-boundary.json
	cargo run -q --bin authedapi -- iam-policy --trust \
	  --operator-role-arn arn:aws:iam::111122223333:role/authedapi-operator \
	  --external-id CHANGE-ME-to-the-tenants-externalId > deploy/aws-tenant-role-trust.json
	cargo run -q --bin authedapi -- iam-policy --assume-only \
	  --assume-role arn:aws:iam::444455556666:role/authedapi > deploy/aws-operator-assume-only.json
