# install_llama_bench SRC_DIR WORK_DIR: the pinned node-llama-cpp (prebuilt
# linux-x64 CPU library only, --omit=optional) and the scripts, in WORK_DIR.
# Reuses an earlier install of the same lock file. Returns 1 when the npm
# registry cannot be reached.
install_llama_bench() {
  local src="$1" work="$2"
  mkdir -p "$work"
  cp "$src/package.json" "$src/package-lock.json" "$src"/*.mjs "$work/"
  if ! cmp -s "$work/package-lock.json" "$work/node_modules/.package-lock.json.copy" 2>/dev/null; then
    (cd "$work" && timeout 30 npm ping >/dev/null 2>&1) || return 1
    (cd "$work" && timeout 300 npm ci --omit=optional --no-audit --no-fund --loglevel=error)
    cp "$work/package-lock.json" "$work/node_modules/.package-lock.json.copy"
  fi
}
