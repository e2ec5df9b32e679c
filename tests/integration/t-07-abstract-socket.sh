# SPDX-License-Identifier: Apache-2.0
# The abstract socket: shortcertd also listens on @NAME (reachable from a
# chrooted service in the same network namespace), and a service whose
# OPENSSL_CONF names @NAME is served through it; with only the abstract
# socket configured, the path socket is not needed at all.
ca_up
D=$TNAME-shortcertd
PORT=8447
NAME=shortcert-it-$$

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
sed -i "s|^socket = .*|socket = $T/run/shortcert.sock\nabstract-socket = @$NAME|" "$T/sc.conf"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
grep -q "Listening for signing requests on @$NAME" "$H/run/$D.log" || fail "not listening on @$NAME"
sc_openssl_conf "$T/openssl.cnf" "@$NAME"

note "s_server (nobody) signs through @$NAME; the path socket is removed"
# Removing the path socket after the start leaves the abstract name as the
# only way in, as for a service that chroots after loading its keys.
h_bg "$TNAME-s_server" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" \
	-no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
rm -f "$T/run/shortcert.sock"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "TLS 1.3 through the abstract socket failed"
tls_check api.internal.test "$PORT" tls1_2 >/dev/null || fail "TLS 1.2 through the abstract socket failed"
ok=$(status_json | jq '.identities[0].signatures.ok')
note "signatures through @$NAME: $ok"
((ok >= 2)) || fail "expected 2 signatures, got $ok"

note "a peer outside the namespace cannot reach @$NAME"
"$BUILD/tests/integration/sc-sign" "@$NAME" "$T/out/api.ref" tls13-server-cv >/dev/null 2>&1 &&
	fail "reachable from the host namespace"
h_kill "$TNAME-s_server"
h_kill "$D"
