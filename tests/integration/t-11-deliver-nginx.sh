# SPDX-License-Identifier: Apache-2.0
# Delivery to an unmodified nginx (Debian's 1.22) in its production shape: a
# root master loads the chain and the key reference through the provider,
# two workers running as nobody make the handshakes.  shortcertd renews the
# certificate (same key) every few seconds; nginx keeps serving the one it
# loaded until it is reloaded.  With helper/deliver.c, driven by
# tests/tools/deliver-tool: the endpoint check says "another certificate"
# before the reload; the SIGNAL action (SIGHUP to the PID in nginx's
# pidfile) makes nginx load the new one and the check then says "this one";
# so does the EXEC action running `nginx -s reload` (which needs the
# service's OPENSSL_CONF as well: it loads the key reference itself before
# it signals the master).  A client loop makes fresh TLS 1.3 and TLS 1.2
# connections, verifying chain and host name, the whole time: none may fail.
ca_up
D=$TNAME-shortcertd
NG=$TNAME-nginx
CL=$TNAME-client
PORT=8443
SNI=web.internal.test
NGD=$T/nginx
TOOL=$BUILD/tests/tools/deliver-tool
EP=127.0.0.1:$PORT

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps test)"

# A 1-minute certificate (step-ca backdates notBefore by another minute),
# renewed at 60 % of that: a new certificate for the same key about every
# 12 s, so a renewal is never far away and never close to the next one.
sc_config "$T/sc.conf" web "$SNI, 127.0.0.1" "allow-users = nobody" \
	"renew-at = 60%" "renew-jitter = 1%"
sed -i 's/^lifetime = .*/lifetime = 1m/' "$T/sc.conf"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/web.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
check() { h_ns "$TOOL" check "$EP" "$SNI" "$@"; }

note "nginx: root master + 2 workers as nobody, ssl_certificate_key = the key reference"
h_nginx_conf "$NGD" "$PORT" "$T/out/web.crt" "$T/out/web.ref" "$SNI"
h_nginx_start "$NG" "$NGD" "$T/openssl.cnf" || fail "nginx did not start"
master=$(h_pid "$NG")
for w in $(h_nginx_workers "$NG"); do
	[[ $(ps -o user= -p "$w") == nobody ]] || fail "worker $w runs as $(ps -o user= -p "$w")"
done
[[ $(ps -o user= -p "$master") == root ]] || fail "the master is not root"
# What nginx serves (a renewal may have come between its start and now).
h_ns openssl s_client -connect "$EP" -servername "$SNI" </dev/null 2>/dev/null |
	openssl x509 >"$T/served.crt" || fail "no certificate from nginx"
for v in tls1_3 tls1_2; do
	got=$(tls_check "$SNI" "$PORT" "$v") || fail "$v handshake with nginx failed"
	[[ ${got#serial=} == "$(serial_of "$T/served.crt")" ]] || fail "$v: served $got"
done
out=$(check "$T/served.crt") || fail "endpoint check: $out"
note "TLS 1.3 and 1.2 verified; endpoint check: $out"

# The client loop: a fresh connection each time, TLS 1.3 and 1.2 in turn,
# verified against the root and the host name; every failure is logged.
# shellcheck disable=SC2016 # expanded by the inner bash
h_bg "$CL" bash -c '
	ok=0; bad=0; i=0
	while [[ ! -e $1/client.stop ]]; do
		i=$((i + 1)); v=(); ((i % 2)) && v=(--tls-max 1.2)
		if body=$(curl -sS --max-time 5 "${v[@]}" --cacert "$2" \
			--resolve "$3:$4:127.0.0.1" "https://$3:$4/" 2>&1) &&
			[[ $body == "hello from nginx" ]]; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1)); echo "$(date +%T.%N) FAILED (${v[*]:-TLS 1.3}): $body"
		fi
	done
	echo "$ok $bad" >"$1/client.result"' client "$T" "$H_CA_ROOT" "$SNI" "$PORT"

# leaf_differs : the chain file's leaf is not the one nginx serves.
leaf_differs() { [[ $(openssl x509 -in "$T/out/web.crt") != "$(cat "$T/served.crt")" ]]; }

# wait_renewal : until shortcertd has written a leaf other than the one
# nginx serves; then copy that leaf to $T/new.crt at once (the next renewal
# is about 12 s away).
wait_renewal() {
	H_WAIT_TRIES=600 H_WAIT_SLEEP=0.05 h_wait leaf_differs || fail "shortcertd wrote no new certificate"
	openssl x509 -in "$T/out/web.crt" -out "$T/new.crt" || fail "no certificate in the new chain"
}

# until_served : poll the endpoint check until nginx serves $T/new.crt;
# prints the time it took in ms.
until_served() {
	local t0=$1 i
	for ((i = 0; i < 400; i++)); do
		if check "$T/new.crt" 2000 >/dev/null 2>&1; then
			echo $(($(h_now_ms) - t0))
			return 0
		fi
		sleep 0.02
	done
	return 1
}

note "round 1: the SIGNAL action"
wait_renewal
old_workers=$(h_nginx_workers "$NG")
rc=0
out=$(check "$T/new.crt") || rc=$?
[[ $rc == 1 && $out == "mismatch $(serial_of "$T/served.crt")" ]] ||
	fail "before the reload: expected 'mismatch $(serial_of "$T/served.crt")', got rc $rc: $out"
note "new certificate $(serial_of "$T/new.crt") written; nginx still serves the old one: $out"
t0=$(h_now_ms)
h_ns "$TOOL" signal "$NGD/nginx.pid" HUP || fail "the SIGNAL action failed"
ms=$(until_served "$t0") || fail "nginx does not serve the new certificate after SIGHUP"
note "SIGHUP: the new certificate is served after ${ms} ms"
[[ $(h_pid "$NG") == "$master" ]] || fail "the master changed"
# The old workers stop accepting about 100 ms after the new ones start
# (nginx's master sleeps 100 ms in between); once they are gone, only the
# new certificate is served.
for w in $old_workers; do
	H_WAIT_TRIES=200 h_wait bash -c "! kill -0 $w" || fail "old worker $w did not exit"
done
for i in 1 2 3 4 5 6 7 8 9 10; do
	out=$(check "$T/new.crt") || fail "check $i after the old workers left: $out"
done
for v in tls1_3 tls1_2; do
	got=$(tls_check "$SNI" "$PORT" "$v") || fail "$v handshake after the reload failed"
	[[ ${got#serial=} == "$(serial_of "$T/new.crt")" ]] || fail "$v: served $got"
done
cp "$T/new.crt" "$T/served.crt"

note "round 2: the EXEC action"
wait_renewal
rc=0
out=$(check "$T/new.crt") || rc=$?
[[ $rc == 1 ]] || fail "before the reload: expected a mismatch, got rc $rc: $out"
# nginx -s reload parses the whole configuration, key reference included,
# before it signals: with the reduced environment (PATH only) it cannot.
rc=0
h_ns "$TOOL" exec 10000 /usr/sbin/nginx -s reload -e "$NGD/error.log" -p "$NGD" \
	-c "$NGD/nginx.conf" 2>"$T/exec.err" || rc=$?
[[ $rc == 2 ]] && grep -q "exited with status 1: nginx: \[emerg\] cannot load certificate key" "$T/exec.err" ||
	fail "nginx -s reload without OPENSSL_CONF: rc $rc, $(cat "$T/exec.err")"
note "without OPENSSL_CONF: $(sed 's/^deliver-tool: exec: //' "$T/exec.err" | cut -c1-110)..."
rc=0
out=$(check "$T/new.crt") || rc=$?
[[ $rc == 1 ]] || fail "a failed nginx -s reload changed what is served"
t0=$(h_now_ms)
h_ns "$TOOL" exec 10000 /usr/bin/env OPENSSL_CONF="$T/openssl.cnf" /usr/sbin/nginx -s reload \
	-e "$NGD/error.log" -p "$NGD" -c "$NGD/nginx.conf" || fail "the EXEC action failed"
ms=$(until_served "$t0") || fail "nginx does not serve the new certificate after nginx -s reload"
note "env OPENSSL_CONF=... nginx -s reload: the new certificate is served after ${ms} ms"

note "the SIGNAL action refuses a stale pidfile"
echo 999999999 >"$T/stale.pid"
rc=0
h_ns "$TOOL" signal "$T/stale.pid" HUP 2>"$T/signal.err" || rc=$?
[[ $rc == 2 ]] && grep -q "does not exist" "$T/signal.err" || fail "stale pidfile: rc $rc $(cat "$T/signal.err")"

touch "$T/client.stop"
H_WAIT_TRIES=200 h_wait test -s "$T/client.result" || fail "the client loop did not stop"
read -r ok bad <"$T/client.result"
note "client loop: $ok connections, $bad failed"
((ok > 50)) || fail "the client loop made only $ok connections"
((bad == 0)) || { grep FAILED "$H/run/$CL.log" | head -5; fail "$bad client connections failed"; }
# A handshake the provider cannot sign is logged as [crit] or [alert].
! grep -E "\[(crit|alert)\]" "$NGD/error.log" || fail "nginx logged handshake errors"
signed=$(status_json | jq '.identities[0].signatures.ok')
note "signatures made by shortcertd: $signed"
((signed >= ok)) || fail "shortcertd signed $signed times for $ok handshakes"
h_nginx_stop "$NG"
h_kill "$D"
