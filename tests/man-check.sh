#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# man-check.sh GROFF PAGE... : every generated man page has a NAME section
# (and section 8 pages a SYNOPSIS), and troff reads it without an undefined
# request (a code line taken for a macro) or an error.  Over-wide tables
# are only warnings and allowed.
set -euo pipefail
groff=$1
shift
rc=0
for page in "$@"; do
	out=$("$groff" -man -Tutf8 -ww -z "$page" 2>&1 || echo "groff failed")
	bad=$(echo "$out" | grep -E "not defined|error|groff failed" || true)
	if [[ -n $bad ]]; then
		echo "$page: $bad" >&2
		rc=1
	fi
	grep -q '^\.SH NAME$' "$page" || { echo "$page: no NAME section" >&2; rc=1; }
	if [[ $page == *.8 ]] && ! grep -q '^\.SH SYNOPSIS$' "$page"; then
		echo "$page: no SYNOPSIS section" >&2
		rc=1
	fi
	echo "$(basename "$page"): $(grep -c '^\.SH' "$page") sections"
done
exit $rc
