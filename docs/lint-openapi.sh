#!/bin/sh
# Lints the API's OpenAPI document with Redocly's recommended rules.
# Needs node and npx (npm fetches @redocly/cli, pinned, on first use).
# Usage: docs/lint-openapi.sh   (from anywhere; exits non-zero on a problem)
set -eu
cd "$(dirname "$0")/.."
exec npx --yes @redocly/cli@2.77.0 lint --extends=recommended --format=stylish internal/httpapi/openapi.json
