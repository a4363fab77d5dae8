#!/usr/bin/env bash
# Regenerates docs/pgclone.1 from the argument parser (swift-argument-parser's generate-manual
# plugin; it builds pgclone in release mode first). Read it with: man -l docs/pgclone.1
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
swift package --allow-writing-to-package-directory generate-manual \
    --output-directory docs --date "$(date -u +%Y-%m-%d)" --authors "pgclone developers"
# The generator gives a flag's `--no-` form the flag's own description: say what it does instead.
awk '
  prev ~ /^\.It Fl -no-/ && $0 == desc[substr(prev, 12)] { print "The opposite of --" substr(prev, 12) " (it overrides the config file)."; prev = $0; next }
  prev ~ /^\.It Fl -/ { desc[substr(prev, 9)] = $0 }
  { print; prev = $0 }
' docs/pgclone.1 >docs/pgclone.1.new
mv docs/pgclone.1.new docs/pgclone.1
