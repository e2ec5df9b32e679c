#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# promtool-metrics.sh TEST_METRICS PROMTOOL: render test-metrics' sample
# exposition and check it with `promtool check metrics` (which also flags
# naming-convention problems).
set -euo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SHORTCERT_METRICS_SAMPLE=$out "$1" >/dev/null
[[ -s $out ]] || { echo "no sample rendered" >&2; exit 1; }
"$2" check metrics <"$out"
echo "promtool check metrics: ok ($(grep -c '^shortcert_' "$out") samples)"
