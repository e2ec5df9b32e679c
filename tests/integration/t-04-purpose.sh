# SPDX-License-Identifier: Apache-2.0
# Purpose-bound signing on the real daemon: a server identity signs TLS
# server handshake inputs, and refuses a JWS signing input, a client-context
# CertificateVerify, a bare digest, and a CSR shaped to look like a TLS 1.2
# ServerKeyExchange.  Also: an unknown protocol version is
# answered with the versions the daemon speaks.
ca_up
D=$TNAME-shortcertd

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.ref" || fail "no reference"
sign() { as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/api.ref" "$@"; }

for kind in tls13-server-cv tls12-ske; do
	out=$(sign "$kind") || fail "$kind was not signed: $out"
	note "$kind: $out"
done
for kind in jws tls13-client-cv digest csr; do
	rc=0
	out=$(sign "$kind") || rc=$?
	note "$kind: $out"
	[[ $rc == 3 && $out == *"code 7 (not a TLS handshake signature input"* ]] || fail "$kind was not refused (rc $rc)"
done
grep -q "reason=purpose input='an ASN.1 structure" "$H/run/$D.log" || fail "no audit line for the CSR"

h_wait grep -q "AUDIT refused identity=api uid=$(id -u nobody) .*reason=purpose input='TLS 1.3 client CertificateVerify'" \
	"$H/run/$D.log" || fail "no audit line for the client CertificateVerify"
grep -q "reason=purpose input='no TLS handshake signature input'" "$H/run/$D.log" || fail "no audit line for the JWS"

rc=0
out=$(sign tls13-server-cv 3) || rc=$?
note "protocol version 3: $out"
[[ $rc == 3 && $out == *"code 2 "*"detail 2"* ]] || fail "version 3 not answered with VERSION/2"

rc=0
out=$(sign unknown-type) || rc=$?
note "unknown request type: $out"
[[ $rc == 3 && $out == *"code 3 "* ]] || fail "unknown type not answered with UNKNOWN_TYPE"

note "the admin socket is for root only"
rc=0
out=$(as_user nobody "$BUILD/helper/shortcertctl" -s "$T/run/admin.sock" status 2>&1) || rc=$?
[[ $rc == 1 && $out == *"Permission denied"* ]] || fail "nobody got the status (rc $rc): $out"
status_json >/dev/null || fail "root cannot get the status"
h_kill "$D"
