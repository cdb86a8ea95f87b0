#!/usr/bin/env bash
# Re-vendors the front-end packages pinned in assets/package-lock.json into the package
# (webui/static/vendor: served by mailgate itself, no CDN) and the test tooling
# (tests/vendor: axe-core for the accessibility gate). The built files are committed, so
# neither installing nor testing mailgate needs npm; run this only to change a version.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
static=../webui/static/vendor
rm -rf "$static" && mkdir -p "$static"
cp node_modules/bootstrap/dist/css/bootstrap.min.css "$static/"
cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js "$static/"
cp node_modules/bootstrap/LICENSE "$static/LICENSE.bootstrap"
cp node_modules/htmx.org/dist/htmx.min.js "$static/"
cp node_modules/htmx.org/LICENSE "$static/LICENSE.htmx"
mkdir -p ../tests/vendor
cp node_modules/axe-core/axe.min.js ../tests/vendor/
cp node_modules/axe-core/LICENSE ../tests/vendor/LICENSE.axe-core
rm -rf node_modules
