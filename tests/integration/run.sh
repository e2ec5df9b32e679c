#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh BUILD_DIR [TEST...] : the integration tests on real peers.  Sets up
# the harness once (private network + mount namespace, a real step-ca 0.19
# built from Debian's sources), then runs each tests/integration/t-*.sh (or
# the named ones) in its own scratch directory, and finally greps every log
# of the run for the private keys' bytes (canary).  Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [TEST...]}" && pwd)
shift
export BUILD

[[ $(id -u) == 0 ]] || { echo "run.sh: the integration tests need root" >&2; exit 1; }
# shellcheck source=../harness/lib.sh
source "$here/../harness/lib.sh"
# shellcheck source=common.sh
source "$here/common.sh"

keep=${SHORTCERT_KEEP:-0}
h_init "$(mktemp -d /tmp/shortcert-it.XXXXXX)"
chmod 755 "$H"
finish() {
	local rc=$?
	h_cleanup
	if [[ $rc == 0 && $keep != 1 ]]; then
		rm -rf "$H"
	else
		echo "run.sh: logs and state kept in $H"
	fi
	exit "$rc"
}
trap finish EXIT

t0=$(h_now_ms)
h_build_stepca
h_ns_start
h_pki
h_ca_config
h_ca_start
echo "run.sh: harness up in $(( ($(h_now_ms) - t0) / 1000 ))s: step-ca at $H_CA_URL"

tests=("$@")
if [[ ${#tests[@]} == 0 ]]; then
	for f in "$here"/t-*.sh; do tests+=("$(basename "$f" .sh)"); done
fi

passed=0
failed=()
for t in "${tests[@]}"; do
	t=${t%.sh}
	export T="$H/$t"
	mkdir -p "$T/run"
	chmod 755 "$T" "$T/run"
	s=$(h_now_ms)
	echo "== $t"
	if (cd "$T" && bash -euo pipefail -c "source '$here/common.sh'; source '$here/../harness/lib.sh'; source '$here/$t.sh'") \
		>"$T/test.log" 2>&1; then
		sed 's/^/   /' "$T/test.log"
		echo "   PASS $t ($(( ($(h_now_ms) - s) ))ms)"
		passed=$((passed + 1))
	else
		sed 's/^/   /' "$T/test.log"
		for l in "$H"/run/*.log; do
			case $(basename "$l") in "$t"*|ca.log) echo "   --- tail of $l"; tail -n 25 "$l" | sed 's/^/   | /';; esac
		done
		echo "   FAIL $t"
		failed+=("$t")
	fi
done

# Canary: no private key may appear in any log of the run, in PEM, base64 or
# hex form (both byte orders: OpenSSL keeps numbers little-endian inside).
canary_fail=0
while IFS= read -r -d '' key; do
	b64=$(grep -v -- '-----' "$key" | tr -d '\n' | cut -c 20-60)
	hex=$(openssl pkey -in "$key" -noout -text 2>/dev/null |
		awk '/^priv:/{f=1; next} /^pub:/{f=0} f' | tr -d ' :\n')
	le=$(echo "$hex" | fold -w2 | tac | tr -d '\n')
	# the scan must be able to find what it looks for
	grep -qF -- "$b64" "$key" && [[ ${#hex} -ge 32 ]] ||
		{ echo "CANARY: cannot extract patterns from $key" >&2; canary_fail=1; }
	for pat in "$b64" "${hex:0:32}" "${le:0:32}"; do
		[[ -n $pat ]] || continue
		if grep -rqiF -- "$pat" "$H/run" "$H"/t-*/test.log 2>/dev/null; then
			echo "CANARY: bytes of private key $key found in a log" >&2
			canary_fail=1
		fi
	done
done < <(find "$H" -name 'key.pem' -path '*/state/*' -print0; find "$H" -name 'account-*.pem' -print0)

echo "run.sh: $passed passed, ${#failed[@]} failed${failed:+: ${failed[*]}}; canary $([[ $canary_fail == 0 ]] && echo clean || echo FOUND)"
[[ ${#failed[@]} == 0 && $canary_fail == 0 ]]
