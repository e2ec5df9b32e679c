#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh BUILD_DIR [TEST...] : the integration tests on real peers.
#
# Each tests/integration/t-*.sh (or each one named) runs in its own scratch
# directory with its own private network + mount namespace and its own real
# step-ca (tests/harness), so tests run in parallel without sharing ports,
# names or CA state: SHORTCERT_IT_JOBS (default 6) at a time.  A test brings
# its CA up with ca_up (common.sh), after setting any H_CA_* knobs it needs.
# Finally every log of the run is searched for the private keys' bytes
# (canary).  Needs root.  SHORTCERT_KEEP=1 keeps the scratch directories.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [TEST...]}" && pwd)
shift
export BUILD

[[ $(id -u) == 0 ]] || { echo "run.sh: the integration tests need root" >&2; exit 1; }
# shellcheck source=../harness/lib.sh
source "$here/../harness/lib.sh"

jobs=${SHORTCERT_IT_JOBS:-6}
keep=${SHORTCERT_KEEP:-0}
ROOT=$(mktemp -d /tmp/shortcert-it.XXXXXX)
chmod 755 "$ROOT"

tests=("$@")
if [[ ${#tests[@]} == 0 ]]; then
	for f in "$here"/t-*.sh; do tests+=("$(basename "$f" .sh)"); done
fi

# Build step-ca once, before the tests race to do it.
(h_init "$ROOT/build" && H_QUIET=1 h_build_stepca) || { echo "run.sh: cannot build step-ca" >&2; exit 1; }

t0=$(h_now_ms)
# One test: its own harness, its own CA; output to $ROOT/<test>/test.log,
# status to $ROOT/<test>/status.
run_one() {
	local t=$1 dir=$ROOT/$1 s rc=0
	mkdir -p "$dir"
	chmod 755 "$dir"
	s=$(h_now_ms)
	(
		cd "$dir"
		export T=$dir
		mkdir -p "$T/run"
		chmod 755 "$T" "$T/run"
		# shellcheck disable=SC2016
		exec bash -euo pipefail -c '
			source "$1/../harness/lib.sh"
			source "$1/common.sh"
			h_init "$2/h"
			chmod 755 "$H"
			trap "h_cleanup" EXIT
			source "$1/$3.sh"' run-one "$here" "$dir" "$t"
	) >"$dir/test.log" 2>&1 || rc=$?
	echo "$rc $(( $(h_now_ms) - s ))" >"$dir/status"
}
export -f run_one
export ROOT here

printf '%s\n' "${tests[@]%.sh}" | xargs -P "$jobs" -I{} bash -c 'source "$here/../harness/lib.sh"; run_one {}'

passed=0
failed=()
for t in "${tests[@]%.sh}"; do
	dir=$ROOT/$t
	read -r rc ms <"$dir/status" || { rc=99; ms=0; }
	echo "== $t"
	sed 's/^/   /' "$dir/test.log"
	if [[ $rc == 0 ]]; then
		echo "   PASS $t (${ms}ms)"
		passed=$((passed + 1))
	else
		for l in "$dir"/h/run/*.log; do
			[[ -f $l ]] || continue
			echo "   --- tail of $l"
			tail -n 25 "$l" | sed 's/^/   | /'
		done
		echo "   FAIL $t (exit $rc)"
		failed+=("$t")
	fi
done

# Canary: no private key may appear in any log of the run, in PEM, base64 or
# hex form (both byte orders: OpenSSL keeps numbers little-endian inside;
# and colon-separated, as `openssl pkey -text` prints it).
canary_fail=0
n_keys=0
while IFS= read -r -d '' key; do
	n_keys=$((n_keys + 1))
	b64=$(grep -v -- '-----' "$key" | tr -d '\n' | cut -c 20-60)
	# (a key t-01 corrupted on purpose sits in a *.corrupt-* folder: skipped)
	hex=$(openssl pkey -in "$key" -noout -text 2>/dev/null |
		awk '/^(priv|privateExponent):/{f=1; next} /^[A-Za-z]/{f=0} f' | tr -d ' :\n') || hex=
	le=$(echo "$hex" | fold -w2 | tac | tr -d '\n')
	# the scan must be able to find what it looks for
	grep -qF -- "$b64" "$key" && [[ ${#hex} -ge 32 ]] ||
		{ echo "CANARY: cannot extract patterns from $key" >&2; canary_fail=1; }
	# hex from byte 1 on (openssl may pad byte 0 with 00); also as openssl
	# -text prints it, colon-separated (12 bytes: within one of its lines)
	colon=$(echo "${hex:2:24}" | fold -w2 | paste -sd:)
	for pat in "$b64" "${hex:2:32}" "${le:0:32}" "$colon"; do
		[[ -n $pat ]] || continue
		if grep -rqiF --include='*.log' -- "$pat" "$ROOT" 2>/dev/null; then
			echo "CANARY: bytes of private key $key found in a log" >&2
			canary_fail=1
		fi
	done
done < <(find "$ROOT" -path '*.corrupt-*' -prune -o \
	\( \( -name 'key.pem' -path '*/state/*' \) -o -name 'account-*.pem' \) -print0)

# Canary 2: no JWK provisioner password (random per test's CA) in a log.
n_pw=0
while IFS= read -r -d '' pwf; do
	pw=$(cat "$pwf")
	[[ ${#pw} -ge 16 ]] || { echo "CANARY: $pwf is too short to search for" >&2; canary_fail=1; continue; }
	n_pw=$((n_pw + 1))
	if grep -rqF --include='*.log' -- "$pw" "$ROOT" 2>/dev/null; then
		echo "CANARY: the provisioner password of $pwf found in a log" >&2
		canary_fail=1
	fi
done < <(find "$ROOT" -path '*/ca/jwk/password' -print0)

echo "run.sh: $passed passed, ${#failed[@]} failed${failed:+: ${failed[*]}} in $(( ($(h_now_ms) - t0) / 1000 ))s;" \
	"canary $([[ $canary_fail == 0 ]] && echo "clean ($n_keys keys, $n_pw passwords)" || echo FOUND)"
if [[ ${#failed[@]} == 0 && $canary_fail == 0 && $keep != 1 ]]; then
	rm -rf "$ROOT"
else
	echo "run.sh: logs and state kept in $ROOT"
fi
[[ ${#failed[@]} == 0 && $canary_fail == 0 ]]
