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
# The wrapper modules say `go 1.26.0` (promtool's `go 1.26.7`, as Prometheus 3.16 requires),
# and GOTOOLCHAIN=local keeps Go from fetching another.
need_go=1.26.7
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
  echo "Go $need_go or newer is required (found $have_go): https://go.dev/dl" >&2; exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "node and npm (Node.js 20 or newer) are required: the rig's IAM judge runs on them (https://nodejs.org)" >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  echo "python3 needs its venv module with ensurepip (Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }

k8s=v1.36.3
vflags() { # -X flags so the binaries report their real version instead of v0.0.0-master
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=36 ' "$pkg" "$k8s" "$pkg" "$pkg"
  done
}
go_tool kube "$root/hack/tools/kube" "-s -w $(vflags)" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kubectl=k8s.io/kubernetes/cmd/kubectl
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

log "ready: $(ls "$tools/bin" | tr '\n' ' ')"
