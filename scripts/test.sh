#!/usr/bin/env bash
# Installs what is missing (Debian packages, kubectl), builds, and runs every
# test. Non-zero on any failure, including a test whose prerequisite is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup-deps.sh"
bash "$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/install-kubectl.sh"
# Every test runs: one whose prerequisite is missing fails instead of
# reporting SKIPPED (GPU tests excepted, on a machine without a GPU).
export MOE_TEST_STRICT=1
export MOE_KUBECTL="$build/tools/kubectl"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@"
