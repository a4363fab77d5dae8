#!/usr/bin/env bash
# Style check: `swift format lint` with the checked-in .swift-format (swift-nio's: 4 spaces, 120
# columns), and the 120-column limit on the lines its formatter cannot break (string literals,
# comments). `swift format format --in-place --recursive --parallel Package.swift Sources Tests`
# fixes most of what it reports. Run by scripts/test.sh, so by .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
files=(Package.swift $(find Sources Tests -name '*.swift' | sort))
swift format lint --strict --parallel "${files[@]}"
long=$(awk 'length > 120 { print FILENAME ":" FNR ": longer than 120 columns" }' "${files[@]}")
if [ -n "$long" ]; then
  echo "$long" >&2
  exit 1
fi
