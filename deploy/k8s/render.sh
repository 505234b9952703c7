#!/usr/bin/env bash
# Re-renders every overlay into deploy/k8s/rendered/ with `kubectl kustomize`
# (kustomize v5, built into kubectl 1.27+) and runs the offline checks.
# Commit the rendered files with the change that produced them: the
# deploy_manifests test fails when they drift from the overlays.
#   deploy/k8s/render.sh [BUILD_DIR]     (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${BUILD_DIR:-$root/build}}"
# kubectl: the one scripts/install-kubectl.sh put in the build tree, else PATH.
if [ -x "$build/tools/kubectl" ]; then export MOE_KUBECTL="$build/tools/kubectl"; fi
/usr/bin/python3 "$root/deploy/k8s/check.py" --bin-dir "$build/bin" --update
