# SPDX-License-Identifier: Apache-2.0
# The ACME client on its own against both real ACME servers: step-ca 0.19
# (chain, names, lifetime, key; repeated issuances) and Pebble rejecting 30 %
# of nonces (every issuance must still succeed through badNonce retries).
# tests/tools/acme-e2e.sh brings up its own namespace and CAs.
out=$("$H_REPO/tests/tools/acme-e2e.sh" "$BUILD/tests/tools/acme-issue" 5 2>&1) || {
	echo "$out" | tail -30
	fail "acme-e2e.sh failed"
}
echo "$out" | grep -E "^(==|lifetime|key matches|badNonce|ACME E2E|median|[0-9]+ issuances)" | sed 's/^/    /'
echo "$out" | contains "ACME E2E OK" || fail "no ACME E2E OK"
