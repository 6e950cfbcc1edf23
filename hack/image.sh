#!/usr/bin/env bash
# Builds the operator's image without a registry or a container engine:
#
#   hack/image.sh [--tag TAG] [--out DIR] [--binary PATH]
#
# The release binary (built with cargo-auditable, so the crates it was built from travel
# inside it) on a root filesystem assembled from Debian packages, the way distroless/cc
# is built: base-files, netbase, tzdata, ca-certificates, libc6 and libgcc-s1 unpacked
# with dpkg-deb (no maintainer scripts), a CA bundle, /etc/passwd and /etc/group with
# root, nobody and nonroot (65532), /tmp 1777, and each package's control file in
# /var/lib/dpkg/status.d/ so scanners see them. umoci packs it as an OCI image (user
# 65532, entrypoint /authedapi controller, OCI labels: version, revision, source); the
# result is an OCI archive (`ctr images import`, `skopeo copy oci-archive:`, `kind load
# image-archive`), with an SPDX SBOM of it (Debian packages and Rust crates) made by syft.
#
# The Dockerfile builds the same layout from gcr.io/distroless/cc-debian12:nonroot for
# those with a registry. Writes to DIR (default target/image):
#   authedapi-<tag>.oci.tar      the image; its name is ghcr.io/authedapi/authedapi:<tag>
#   authedapi-<tag>.spdx.json    the SBOM
#   authedapi-<tag>.packages     the Debian packages and versions it holds
# and prints the image's size. --binary packs an operator binary already built (by this
# script: it must carry cargo-auditable's record) instead of building it. Needs root (files owned by root and 65532 in the image),
# umoci (hack/tools.sh installs it), apt-get and dpkg-deb (Debian, Ubuntu).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${AUTHEDAPI_TOOLS:-$root/.tools}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
tag=$version
out=$root/target/image
binary=
while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "usage: hack/image.sh [--tag TAG] [--out DIR] [--binary PATH]" >&2; exit 2 ;;
  esac
done
repository=ghcr.io/authedapi/authedapi
image=$repository:$tag
packages=(base-files netbase tzdata ca-certificates libc6 libgcc-s1)

log() { printf '[image] %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "hack/image.sh runs as root: the image's files belong to root and to 65532" >&2; exit 1; }
for cmd in umoci apt-get dpkg-deb; do
  command -v "$cmd" >/dev/null || { echo "$cmd is required: run hack/tools.sh" >&2; exit 1; }
done
for bin in cargo-auditable syft; do
  [ -x "$tools/bin/$bin" ] || { echo "$tools/bin/$bin is missing: run hack/tools.sh" >&2; exit 1; }
done

# The binary: release profile, every crate recorded in it (cargo-auditable) for the SBOM.
if [ -z "$binary" ]; then
  log "building the release binary"
  PATH="$tools/bin:$PATH" cargo auditable build --release --locked --bin authedapi
  binary=${CARGO_TARGET_DIR:-$root/target}/release/authedapi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/authedapi-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs" "$work/debs" "$out"

# The packages: whatever version the Debian mirror holds today, recorded beside the image.
log "downloading ${packages[*]}"
(cd "$work/debs" && apt-get download "${packages[@]}" >/dev/null 2>&1) || {
  echo "apt-get download failed: is the Debian mirror reachable (apt-get update)?" >&2; exit 1; }
mkdir -p "$rootfs/var/lib/dpkg/status.d"
: > "$work/packages"
for deb in "$work"/debs/*.deb; do
  name=$(dpkg-deb -f "$deb" Package)
  dpkg-deb -x "$deb" "$rootfs"
  # What distroless writes for each package: its control fields, as dpkg's status has them.
  { dpkg-deb -f "$deb"; echo "Status: install ok installed"; } > "$rootfs/var/lib/dpkg/status.d/$name"
  printf '%s %s\n' "$name" "$(dpkg-deb -f "$deb" Version)" >> "$work/packages"
done

# What the packages' maintainer scripts would have done, and distroless does by hand.
mkdir -p "$rootfs/etc/ssl/certs"
cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt > "$rootfs/etc/ssl/certs/ca-certificates.crt"
cat > "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
mkdir -p "$rootfs/tmp" "$rootfs/root" "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root" "$rootfs/home/nonroot"
chown 65532:65532 "$rootfs/home/nonroot"
rm -rf "$rootfs"/usr/share/{doc,man,info,lintian} "$rootfs/usr/share/ca-certificates"
install -m 0755 "$binary" "$rootfs/authedapi"

# The image: one layer, the distroless config, the OCI labels.
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
created=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
layout=$work/layout
log "packing $image with umoci"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
mv "$rootfs" "$work/bundle/rootfs"
umoci repack --image "$layout:$tag" --history.created "$created" \
  --history.created_by "hack/image.sh: Debian packages + authedapi $version" "$work/bundle"
labels=(
  "org.opencontainers.image.title=authedapi"
  "org.opencontainers.image.description=Kubernetes operator: AuthedApi resources become Auth0-protected AWS HTTP APIs"
  "org.opencontainers.image.version=$tag"
  "org.opencontainers.image.revision=$revision"
  "org.opencontainers.image.source=https://github.com/authedapi/authedapi"
  "org.opencontainers.image.licenses=Apache-2.0"
  "org.opencontainers.image.created=$created"
)
config=(--config.user 65532:65532 --config.entrypoint /authedapi --config.cmd controller
  --config.workingdir / --config.exposedports 8080/tcp
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  --os linux --architecture amd64 --created "$created" --no-history)
for label in "${labels[@]}"; do
  config+=(--config.label "$label" --manifest.annotation "$label")
done
umoci config --image "$layout:$tag" "${config[@]}"
umoci gc --layout "$layout"
# containerd's import names the image from this annotation of the index.
python3 - "$layout/index.json" "$image" <<'EOF'
import json, sys
path, name = sys.argv[1], sys.argv[2]
index = json.load(open(path))
for manifest in index["manifests"]:
    manifest.setdefault("annotations", {})["io.containerd.image.name"] = name
json.dump(index, open(path, "w"))
EOF

archive=$out/authedapi-$tag.oci.tar
# Entries named without "./" (syft refuses those as path traversal).
tar --sort=name --mtime="$created" --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$archive" \
  oci-layout index.json blobs
cp "$work/packages" "$out/authedapi-$tag.packages"

log "SBOM with syft"
SYFT_CHECK_FOR_APP_UPDATE=false "$tools/bin/syft" scan "oci-archive:$archive" -q \
  -o "spdx-json=$out/authedapi-$tag.spdx.json"

layer=$(python3 - "$layout" <<'EOF'
import json, os, sys
layout = sys.argv[1]
index = json.load(open(f"{layout}/index.json"))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(f"{layout}/blobs/sha256/{digest}"))
print(sum(layer["size"] for layer in manifest["layers"]))
EOF
)
log "image $image: $archive"
log "size: $(du -h "$archive" | cut -f1) archive, $((layer / 1024 / 1024)) MiB compressed layers, $(du -sh "$work/bundle/rootfs" | cut -f1) unpacked"
log "SBOM: $out/authedapi-$tag.spdx.json ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["packages"]))' "$out/authedapi-$tag.spdx.json") packages)"
