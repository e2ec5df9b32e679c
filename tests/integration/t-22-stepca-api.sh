# SPDX-License-Identifier: Apache-2.0
# step-ca's own API through shortcertd's client, on its own against the
# real CA (tests/tools/stepca-e2e.sh brings up its own namespace and CA
# configs): JWK enrollment (password file, JWK file, wrong password), mTLS
# renew, two identities renewed back to back each keeping its own subject
# (and the control showing what connection reuse or TLS session resumption
# would do), token renew before and after expiry, rekey, the clientAuth-less
# certificate, and renew refused when the provisioner does not allow it.
out=$("$H_REPO/tests/tools/stepca-e2e.sh" "$BUILD/tests/tools/stepca-client" 0 2>&1) || {
	echo "$out" | tail -30
	fail "stepca-e2e.sh failed"
}
echo "$out" | grep -E "^(==|ok |STEPCA E2E)" | cut -c1-150 | sed 's/^/    /'
grep -q "STEPCA E2E OK" <<<"$out" || fail "no STEPCA E2E OK"
