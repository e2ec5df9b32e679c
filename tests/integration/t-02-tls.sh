# SPDX-License-Identifier: Apache-2.0
# An unmodified `openssl s_server`, running as nobody with the reference as
# its key, serves TLS 1.3 and TLS 1.2 handshakes that an unmodified s_client
# verifies against the root and the host name; the signatures are made by
# shortcertd (its counters move).
ca_up
D=$TNAME-shortcertd
PORT=8442

sc_config "$T/sc.conf" api "api.internal.test, 127.0.0.1" "allow-users = nobody"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

note "the provider loads: openssl list -providers"
OPENSSL_CONF=$T/openssl.cnf openssl list -providers | contains shortcert || fail "provider not listed"

note "s_server as nobody cannot read the private key, only the reference"
as_user nobody cat "$T/state/identities/api/current/key.pem" 2>/dev/null && fail "nobody can read the key"
h_bg "$TNAME-s_server" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"

serial=$(openssl x509 -in "$T/out/api.crt" -noout -serial)
for v in tls1_3 tls1_2; do
	note "s_client -$v -verify_return_error -verify_hostname api.internal.test"
	got=$(tls_check api.internal.test "$PORT" "$v") || fail "$v handshake failed"
	[[ $got == "$serial" ]] || fail "served $got, expected $serial"
done
ok=$(status_json | jq '.identities[0].signatures.ok')
note "signatures made by shortcertd: $ok"
((ok >= 2)) || fail "shortcertd signed $ok times for 2 handshakes"
h_kill "$TNAME-s_server"
h_kill "$D"
