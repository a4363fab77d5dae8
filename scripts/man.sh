#!/usr/bin/env bash
# Regenerates docs/pgclone.1 from the argument parser (swift-argument-parser's generate-manual
# plugin; it builds pgclone in release mode first). Read it with: man -l docs/pgclone.1
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
swift package --allow-writing-to-package-directory generate-manual \
    --output-directory docs --date "$(date -u +%Y-%m-%d)" --authors "pgclone developers"
