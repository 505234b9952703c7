#!/usr/bin/env bash
# Configures and builds the project into build/ (Ninja, RelWithDebInfo).
# Used by test.sh and run-local.sh; BUILD_DIR overrides the directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${MOE_BUILD_JOBS:-$(nproc)}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$jobs" "$@"
