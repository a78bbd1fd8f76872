#!/usr/bin/env bash
# Re-vendors the console's third-party libraries from the npm registry, at the pinned versions below,
# with their licence files. Run it after changing a version; commit what it writes to vendor/.
# Nothing is fetched at run time: the gateway serves these files itself.
set -euo pipefail
cd "$(dirname "$0")"

CYTOSCAPE_VERSION=3.35.0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "cytoscape@${CYTOSCAPE_VERSION}" >/dev/null && tar -xzf "cytoscape-${CYTOSCAPE_VERSION}.tgz")

mkdir -p vendor
cp "$work/package/dist/cytoscape.min.js" vendor/cytoscape.min.js
cp "$work/package/LICENSE" vendor/cytoscape.LICENSE.txt
printf 'cytoscape %s (npm registry), dist/cytoscape.min.js and LICENSE\n' "$CYTOSCAPE_VERSION" > vendor/VERSIONS.txt
echo "vendored cytoscape ${CYTOSCAPE_VERSION} into $(pwd)/vendor"
