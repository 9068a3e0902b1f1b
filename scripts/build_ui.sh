#!/usr/bin/env bash
# Rebuilds the web UI's vendored library (graphdex/api/ui/vendor) from npm: Cytoscape.js at the version pinned in
# scripts/ui/package.json and its lock file. Run it when that version changes and commit the result: `make run` and
# `graphdex serve` use the committed files and need no Node. Needs node and npm.
set -euo pipefail
GRAPHDEX_SCRIPT=build_ui.sh
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

command -v npm >/dev/null || die "npm is needed to rebuild the UI's vendored files (Node 18 or later)"
vendor="$here/../graphdex/api/ui/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/ui/package.json" "$work/"
[[ -f "$here/ui/package-lock.json" ]] && cp "$here/ui/package-lock.json" "$work/"
if [[ -f "$work/package-lock.json" ]]; then
    (cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --silent)
else
    (cd "$work" && npm install --no-audit --no-fund --ignore-scripts --silent)
    cp "$work/package-lock.json" "$here/ui/package-lock.json"
fi
mkdir -p "$vendor"
cp "$work/node_modules/cytoscape/dist/cytoscape.min.js" "$vendor/cytoscape.min.js"
cp "$work/node_modules/cytoscape/LICENSE" "$vendor/cytoscape.LICENSE"
version="$(node -p "require('$work/node_modules/cytoscape/package.json').version")"
say "vendored cytoscape $version into ${vendor#"$here/../"}"
