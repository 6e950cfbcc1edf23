# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
# Everything else here is what those two are made of.

.PHONY: test tools lint crds

# Build the rig's tools (pinned kube-apiserver, etcd, kubectl, helm, moto) once.
tools:
	hack/tools.sh

# Every test, against the real rig: formatting, lints, unit and integration tests.
test: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Regenerate crds/ from the Rust types.
crds:
	cargo run -q -- crd > crds/authedapi.dev_authedapis.yaml
