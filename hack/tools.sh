#!/usr/bin/env bash
# Builds the local rig's tools into .tools/ (git-ignored), each at a pinned version:
#   kube-apiserver, kubectl  k8s.io/kubernetes v1.36.3  (hack/tools/kube, from the Go module proxy)
#   etcd                     go.etcd.io/etcd v3.6.16    (hack/tools/etcd)
#   helm                     helm.sh/helm/v3 v3.22.0    (hack/tools/helm)
#   promtool                 github.com/prometheus/prometheus v0.316.0 (Prometheus 3.16.0;
#                                                       hack/tools/promtool): checks and
#                                                       unit-tests the chart's alert rules
#   kstatus                  sigs.k8s.io/cli-utils v0.37.2 (hack/tools/kstatus, a small
#                                                       main.go): the status Flux computes
#   kubelet, kube-controller-manager, kube-scheduler, kube-proxy
#                            k8s.io/kubernetes v1.36.3  (hack/tools/kube): the rig's node
#   containerd, runc, CNI plugins, iptables, umoci
#                            Debian's packages (apt-get): the rig's node, the image; the
#                                                       versions installed are recorded in
#                                                       .tools/stamps/debian
#   pause image              k8s.io/kubernetes v1.36.3's build/pause/linux/pause.c, static
#                                                       (.tools/images/pause.oci.tar)
#   syft                     github.com/anchore/syft v1.57.2 (hack/tools/syft): the image's SBOM
#   cargo-auditable          0.7.7 (crates.io): the crates a release binary was built from,
#                                                       inside it, for the SBOM
#   moto server              moto 5.2.5                 (hack/emulator/requirements.txt, in .tools/venv)
#   IAM judge                @cloud-copilot/iam-simulate 0.1.173 + iam-data
#                                                       (hack/iam-judge/package-lock.json, in .tools/iam-judge)
# A tool already built from the same pins is left alone, so a second run takes a second.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${AUTHEDAPI_TOOLS:-$root/.tools}
mkdir -p "$tools/bin" "$tools/stamps"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp NAME FILES... — the pin a tool was built from: its inputs' hashes and the Go version.
stamp() {
  local name=$1; shift
  { cat "$@"; go version 2>/dev/null || true; python3 --version 2>/dev/null || true; } | sha256sum | cut -d' ' -f1
}

fresh() { # fresh NAME STAMP BIN...: true when every binary exists and was built from STAMP
  local name=$1 want=$2; shift 2
  [ "$(cat "$tools/stamps/$name" 2>/dev/null)" = "$want" ] || return 1
  for bin in "$@"; do [ -x "$tools/bin/$bin" ] || return 1; done
}

go_tool() { # go_tool NAME DIR LDFLAGS BIN=PACKAGE... — build each PACKAGE of the wrapper module in DIR
  local name=$1 dir=$2 ldflags=$3; shift 3
  # The pin: the flags, go.mod, go.sum and the module's own Go files (a wrapper with a main.go).
  local own=(); local file; for file in "$dir"/*.go; do [ -e "$file" ] && own+=("$file"); done
  local want; want=$(printf '%s' "$ldflags" | cat - "$dir/go.mod" "$dir/go.sum" "${own[@]}" | stamp "$name" /dev/stdin)
  local bins=() pair; for pair in "$@"; do bins+=("${pair%%=*}"); done
  if fresh "$name" "$want" "${bins[@]}"; then log "$name: up to date"; return; fi
  log "$name: building ${bins[*]} from source (cold, on 2 cores: about 4 minutes for kube, 1 for etcd or helm, 5 for promtool, under 1 for kstatus)"
  local start=$SECONDS
  for pair in "$@"; do
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$tools/bin/${pair%%=*}" "${pair#*=}")
  done
  echo "$want" > "$tools/stamps/$name"
  log "$name: built in $((SECONDS - start))s"
}

command -v go >/dev/null || { echo "go is required (https://go.dev/dl): the rig's tools are built from source" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required: the AWS emulator (moto) runs on it" >&2; exit 1; }
# The wrapper modules say `go 1.26.0` (promtool's `go 1.26.7`, as Prometheus 3.16 requires;
# syft's `go 1.26.8`), and GOTOOLCHAIN=local keeps Go from fetching another.
need_go=1.26.8
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  echo "Go $need_go or newer is required (found $have_go): https://go.dev/dl" >&2; exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "node and npm (Node.js 20 or newer) are required: the rig's IAM judge runs on them (https://nodejs.org)" >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  echo "python3 needs its venv module with ensurepip (Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }

# Debian's packages for the rig's node and the image: a container runtime, its network
# plugins and kube-proxy's iptables, and umoci, which packs OCI images without a registry.
debian=(containerd runc containernetworking-plugins iptables umoci)
missing=()
for package in "${debian[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "apt-get is required to install ${missing[*]} (Debian or Ubuntu)" >&2; exit 1; }
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  log "debian: installing ${missing[*]}"
  $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update >/dev/null
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  }
fi
dpkg-query -W -f='${Package} ${Version}\n' "${debian[@]}" > "$tools/stamps/debian"
log "debian: $(tr '\n' ' ' < "$tools/stamps/debian")"

# The AWS emulator: moto server in a virtualenv, every dependency pinned.
req=$root/hack/emulator/requirements.txt
want=$(stamp moto "$req")
if [ "$(cat "$tools/stamps/moto" 2>/dev/null)" = "$want" ] && [ -x "$tools/venv/bin/python" ]; then
  log "moto: up to date"
else
  log "moto: installing into $tools/venv"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$tools/stamps/moto"
fi

# The IAM judge: a maintained IAM policy simulator, every npm package pinned by the lockfile.
judge=$root/hack/iam-judge
want=$( { cat "$judge/package.json" "$judge/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tools/stamps/iam-judge" 2>/dev/null)" = "$want" ] && [ -d "$tools/iam-judge/node_modules/@cloud-copilot/iam-simulate" ]; then
  log "iam-judge: up to date"
else
  log "iam-judge: installing into $tools/iam-judge"
  rm -rf "$tools/iam-judge"
  mkdir -p "$tools/iam-judge"
  cp "$judge/package.json" "$judge/package-lock.json" "$tools/iam-judge/"
  (cd "$tools/iam-judge" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$tools/stamps/iam-judge"
fi

k8s=v1.36.3
vflags() { # -X flags so the binaries report their real version instead of v0.0.0-master
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=36 ' "$pkg" "$k8s" "$pkg" "$pkg"
  done
}
go_tool kube "$root/hack/tools/kube" "-s -w $(vflags)" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kubectl=k8s.io/kubernetes/cmd/kubectl \
  kubelet=k8s.io/kubernetes/cmd/kubelet kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kube-proxy=k8s.io/kubernetes/cmd/kube-proxy
go_tool etcd "$root/hack/tools/etcd" "-s -w" etcd=go.etcd.io/etcd/server/v3
# Helm's own releases stamp the Kubernetes version it assumes without a cluster (for
# `helm template` and a chart's kubeVersion); a source build must too, or it assumes 1.20.
go_tool helm "$root/hack/tools/helm" "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0 \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=36" \
  helm=helm.sh/helm/v3/cmd/helm
# promtool reports its release (the module's v0.316.0 is Prometheus 3.16.0).
go_tool promtool "$root/hack/tools/promtool" "-s -w -X github.com/prometheus/common/version.Version=3.16.0 \
-X github.com/prometheus/common/version.Branch=release-3.16" \
  promtool=github.com/prometheus/prometheus/cmd/promtool
go_tool kstatus "$root/hack/tools/kstatus" "-s -w" kstatus=.
go_tool syft "$root/hack/tools/syft" "-s -w -X main.version=1.57.2" syft=github.com/anchore/syft/cmd/syft

# The pause image every pod's sandbox runs, from the pinned Kubernetes source (as its
# build/pause Makefile builds it), packed by umoci; the node's containerd imports it.
pause_c=$(cd "$root/hack/tools/kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
want=$( { cat "$pause_c"; gcc --version | head -n1; umoci --version; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$tools/stamps/pause" 2>/dev/null)" = "$want" ] && [ -f "$tools/images/pause.oci.tar" ]; then
  log "pause: up to date"
else
  log "pause: building the pause image"
  work=$(mktemp -d)
  mkdir -p "$tools/images"
  gcc -Os -Wall -Werror -static -DVERSION=v3.10.2-authedapi-rig -o "$work/pause" "$pause_c"
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:3.10.2"
  umoci unpack --rootless --image "$work/layout:3.10.2" "$work/bundle" >/dev/null
  install -m 0755 "$work/pause" "$work/bundle/rootfs/pause"
  umoci repack --image "$work/layout:3.10.2" "$work/bundle"
  umoci config --image "$work/layout:3.10.2" --config.entrypoint /pause --config.user 65535:65535 \
    --os linux --architecture amd64
  umoci gc --layout "$work/layout"
  # containerd's import names the image from this annotation of the index.
  python3 -c 'import json, sys
index = json.load(open(sys.argv[1]))
for manifest in index["manifests"]:
    manifest.setdefault("annotations", {})["io.containerd.image.name"] = sys.argv[2]
json.dump(index, open(sys.argv[1], "w"))' "$work/layout/index.json" registry.k8s.io/pause:3.10.2
  tar -C "$work/layout" -cf "$tools/images/pause.oci.tar" .
  rm -rf "$work"
  echo "$want" > "$tools/stamps/pause"
fi

# cargo-auditable: hack/image.sh builds the operator with it, so the crates are in the binary.
auditable=0.7.7
if [ "$(cat "$tools/stamps/cargo-auditable" 2>/dev/null)" = "$auditable" ] && [ -x "$tools/bin/cargo-auditable" ]; then
  log "cargo-auditable: up to date"
else
  log "cargo-auditable: installing $auditable"
  cargo install --quiet --locked --version "$auditable" --root "$tools/cargo-auditable" cargo-auditable
  ln -sf "$tools/cargo-auditable/bin/cargo-auditable" "$tools/bin/cargo-auditable"
  echo "$auditable" > "$tools/stamps/cargo-auditable"
fi

log "ready: $(ls "$tools/bin" | tr '\n' ' ')"
