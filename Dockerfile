# syntax=docker/dockerfile:1
# The authedapi operator image, for those with a registry and a container engine:
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     -t ghcr.io/authedapi/authedapi:0.1.0 .
# It is the layout hack/image.sh builds without either (and the one the rig's node runs):
# distroless/cc (glibc, libgcc, CA certificates, tzdata; nonroot 65532), the release
# binary at /authedapi built with cargo-auditable (the crates it holds, for SBOM tools),
# `authedapi controller` as 65532, the same OCI labels. The Helm chart (charts/authedapi)
# expects it.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
RUN cargo install --locked --version 0.7.7 cargo-auditable

# Dependencies first, in a layer of their own: it is rebuilt only when a manifest or the
# lock file changes. The workspace's members get stub sources for this step.
COPY Cargo.toml Cargo.lock ./
COPY rig/Cargo.toml rig/Cargo.toml
RUN mkdir -p src rig/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs rig/src/lib.rs \
    && cargo auditable build --release --locked --bin authedapi \
    && rm -rf src

# The operator itself. Touch the sources so cargo rebuilds over the stubs even when the
# copied files' timestamps are older than the stub build.
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo auditable build --release --locked --bin authedapi \
    && cp target/release/authedapi /authedapi

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="authedapi" \
      org.opencontainers.image.description="Kubernetes operator: AuthedApi resources become Auth0-protected AWS HTTP APIs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/authedapi/authedapi" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /authedapi /authedapi
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/authedapi"]
CMD ["controller"]
