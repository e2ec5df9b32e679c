# SPDX-License-Identifier: Apache-2.0
# Under systemd: the units verify (systemd-analyze); shortcertd takes the
# sockets systemd passes it (socket activation) and tells when it is ready
# (Type=notify); restarted while an unmodified s_server is under a client
# loop, no handshake fails (they queue in the socket's backlog), and the
# s_server, an older process mapping the provider, keeps working with the
# new daemon.  A provider pinned to protocol version 1 (what an older
# provider speaks) works with this daemon (version 2) as well.
ca_up
D=$TNAME-activator
PORT=8448

note "systemd-analyze verify of conf/systemd"
mkdir -p "$T/units"
for f in "$H_REPO"/conf/systemd/*; do
	sed "s|/usr/sbin/shortcertd|$BUILD/helper/shortcertd|" "$f" >"$T/units/$(basename "$f")"
done
out=$(systemd-analyze verify --man=no "$T"/units/shortcertd.service "$T"/units/shortcertd.socket \
	"$T"/units/shortcertd-admin.socket 2>&1) || fail "systemd-analyze verify: $out"
[[ -z $out ]] || echo "$out" | sed 's/^/    /'

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
h_bg "$D" /usr/bin/python3 "$H_REPO/tests/integration/activator.py" \
	"$T/run/shortcert.sock" "$T/run/admin.sock" -- "$BUILD/helper/shortcertd" -c "$T/sc.conf"
h_wait grep -q "NOTIFY READY=1" "$H/run/$D.log" || fail "no READY=1 from shortcertd"
grep -q "Listening for signing requests on $T/run/shortcert.sock (from systemd)" "$H/run/$D.log" ||
	fail "the passed signing socket was not used"
grep -q "admin requests on $T/run/admin.sock (from systemd)" "$H/run/$D.log" ||
	fail "the passed admin socket was not used"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
note "shortcertd took both sockets from the activator and sent READY=1"

sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
sc_s_server "$TNAME-s_server" "$PORT" api

ok=0 bad=0
for round in 1 2 3; do
	kill -USR1 "$(h_pid "$D")"
	for i in $(seq 1 15); do
		if tls_check api.internal.test "$PORT" tls1_3 >/dev/null 2>&1; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
	done
done
restarts=$(grep -c "^RESTARTING" "$H/run/$D.log")
note "$restarts restarts of shortcertd during $((ok + bad)) handshakes: $bad failed"
((restarts == 3 && bad == 0 && ok == 45)) || fail "handshakes failed across restarts"
h_kill "$TNAME-s_server"

note "an older provider (protocol version 1) with the newer daemon"
cp "$T/openssl.cnf" "$T/openssl-v1.cnf"
echo "shortcert-protocol-version = 1" >>"$T/openssl-v1.cnf"
h_bg "$TNAME-s_server-v1" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl-v1.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" \
	-no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "a version 1 provider failed"
tls_check api.internal.test "$PORT" tls1_2 >/dev/null || fail "a version 1 provider failed (TLS 1.2)"
for v in 1 2; do
	out=$(as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/api.ref" \
		tls13-server-cv "$v") || fail "protocol version $v: $out"
	note "$out"
done
h_kill "$TNAME-s_server-v1"
h_kill "$D"
