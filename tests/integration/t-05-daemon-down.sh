# SPDX-License-Identifier: Apache-2.0
# The provider is a guest: with shortcertd stopped, a handshake fails at once
# with a clear error instead of hanging, and works again when shortcertd is
# back, without restarting the service.  With shortcertd frozen (SIGSTOP),
# the first handshake fails after the provider's timeout and the next ones
# fail at once during the back-off.
ca_up
D=$TNAME-shortcertd
PORT=8445

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
h_bg "$TNAME-s_server" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
srv=$(h_pid "$TNAME-s_server")
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "first handshake failed"

timed() { local s; s=$(h_now_ms); "$@" >/dev/null 2>&1 && return 1; echo $(( $(h_now_ms) - s )); }

note "shortcertd stopped"
h_kill "$D"
ms=$(timed tls_check api.internal.test "$PORT" tls1_3) || fail "handshake succeeded without shortcertd"
note "handshake failed after ${ms}ms"
((ms < 5000)) || fail "the failing handshake took ${ms}ms"
h_wait grep -q "cannot reach shortcertd" "$H/run/$TNAME-s_server.log" || fail "no clear error in s_server's output"
grep -m1 "cannot reach shortcertd" "$H/run/$TNAME-s_server.log" | sed 's/^/    s_server: /'

note "shortcertd started again: the same s_server works"
sc_start "$D" "$T/sc.conf"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "no recovery"
[[ $(h_pid "$TNAME-s_server") == "$srv" ]] && kill -0 "$srv" || fail "s_server was restarted"

note "shortcertd frozen (SIGSTOP)"
h_kill "$D" STOP
ms=$(timed tls_check api.internal.test "$PORT" tls1_3) || fail "handshake succeeded with a frozen shortcertd"
note "first handshake failed after ${ms}ms (provider timeout)"
((ms < 5000)) || fail "took ${ms}ms"
ms=$(timed tls_check api.internal.test "$PORT" tls1_3) || fail "handshake succeeded"
note "second handshake failed after ${ms}ms (back-off: no second wait)"
grep -qi "back" "$H/run/$TNAME-s_server.log" || fail "no back-off error in s_server's output"
h_kill "$D" CONT
H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait tls_check api.internal.test "$PORT" tls1_3 || fail "no recovery after SIGCONT"
note "recovered after SIGCONT"
h_kill "$TNAME-s_server"
h_kill "$D"
