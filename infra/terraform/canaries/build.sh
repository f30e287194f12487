#!/usr/bin/env bash
# Builds the CloudWatch Synthetics canary bundles that infra/terraform zips and uploads
# (modules/observability/canaries.tf reads canaries/build/<name>/). Run before `terraform plan`.
# Layout required by the Node.js Synthetics runtimes: nodejs/node_modules/<script>.js plus its
# dependencies in nodejs/node_modules/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/build"

rm -rf "$build"
mkdir -p "$build/chat/nodejs/node_modules" "$build/health/nodejs/node_modules"

# chat: socket.io-client (production dependencies only, exact versions from package-lock.json)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$here/chat/package.json" "$here/chat/package-lock.json" "$tmp/"
(cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
cp -R "$tmp/node_modules/." "$build/chat/nodejs/node_modules/"
cp "$here/chat/chat-round-trip.js" "$build/chat/nodejs/node_modules/"

# health: no dependencies
cp "$here/health/health-endpoints.js" "$build/health/nodejs/node_modules/"

echo "canaries built in $build"
