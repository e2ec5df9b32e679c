# SPDX-License-Identifier: Apache-2.0
# The allow list: a uid that is not on it gets a refusal, a log line and no
# signature; a supplementary group on allow-groups is enough (SO_PEERGROUPS).
ca_up
D=$TNAME-shortcertd
PORT=8443

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "allow-groups = 4242"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

note "s_server as uid 'daemon' (not on the list): the handshake fails"
h_bg "$TNAME-denied" setpriv --reuid=daemon --regid=daemon --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null 2>&1 && fail "handshake succeeded for a uid not allowed"
uid=$(id -u daemon)
h_wait grep -q "AUDIT refused identity=api uid=$uid .*reason=not-on-allow-list" "$H/run/$D.log" ||
	fail "no refusal log line"
h_wait grep -qi "permission denied" "$H/run/$TNAME-denied.log" || fail "s_server shows no clear error"
grep -i "error.*shortcert" "$H/run/$TNAME-denied.log" | head -1 | sed 's/^/    s_server: /'
st=$(status_json)
[[ $(echo "$st" | jq '.identities[0].signatures.ok') == 0 ]] || fail "a signature was made"
(($(echo "$st" | jq '.identities[0].signatures.denied') >= 1)) || fail "refusal not counted"
h_kill "$TNAME-denied"

note "the same uid with supplementary group 4242 (on allow-groups) is served"
h_bg "$TNAME-group" setpriv --reuid=daemon --regid=daemon --groups=4242 -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "group member refused"
h_kill "$TNAME-group"
h_kill "$D"
