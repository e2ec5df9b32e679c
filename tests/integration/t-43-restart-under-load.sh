# SPDX-License-Identifier: Apache-2.0
# shortcertd restarted while haproxy (master-worker, 2 threads) and
# PostgreSQL serve key references through it under a client loop.  The
# sockets are socket-activated (tests/integration/activator.py keeps them,
# as systemd does), so handshakes during a restart wait in the backlog.
# Three restarts; failures are allowed only inside a restart window (from
# the restart until the new daemon said READY=1), none after the last one;
# neither service is restarted or reloaded.  Then the restarted daemon
# renews and delivers to both (haproxy through its master CLI, "@1").
ca_up
D=$TNAME-activator
HP=$TNAME-haproxy
PGN=$TNAME-postgres
HPORT=8443
HSNI=api.internal.test
HD=$T/haproxy
mkdir -p "$HD"
chmod 755 "$HD"
pgt_init

sc_config "$T/sc.conf" svc "$HSNI, $PG_SNI" "allow-users = haproxy, postgres"
hp_target svc "$HD" "$HPORT" "$HSNI" master
pgt_target svc 0600
h_bg "$D" /usr/bin/python3 "$H_REPO/tests/integration/activator.py" \
	"$T/run/shortcert.sock" "$T/run/admin.sock" -- "$BUILD/helper/shortcertd" -c "$T/sc.conf"
h_wait grep -q "NOTIFY READY=1" "$H/run/$D.log" || fail "no READY=1 from shortcertd"
sc_wait_file "$HD/svc.pem" || fail "no combined PEM"
sc_wait_file "$PG/tls/server.ref" || fail "no reference for postgres"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
hp_start "$HP" "$HD" "$HPORT" "$HD/svc.pem" "$T/openssl.cnf"
pgt_start "$PGN" "$T/openssl.cnf"
master=$(h_pid "$HP")
worker=$(hp_workers "$master")
pm=$(h_pid "$PGN")
note "haproxy $master/$worker and postmaster $pm serve through shortcertd"

loop() {
	local end=$(($(date +%s) + $1)) s
	while (($(date +%s) < end)); do
		if s=$(tls_check "$HSNI" "$HPORT" tls1_3 2>/dev/null); then echo "ok haproxy ${s#serial=}"; else echo "FAIL haproxy $(date +%T.%N)"; fi
		if [[ $(pgt_check 2>/dev/null) == t ]]; then echo "ok psql"; else echo "FAIL psql $(date +%T.%N)"; fi
	done
}
ready_count() { grep -c "NOTIFY READY=1" "$H/run/$D.log" || true; }
_more_ready() { (($(ready_count) > $1)); }
loop 40 >>"$T/clients.log" &
cpid=$!
sleep 3
for round in 1 2 3; do
	n=$(ready_count)
	echo "MARK restart $round" >>"$T/clients.log"
	kill -USR1 "$(h_pid "$D")"
	H_WAIT_TRIES=400 h_wait _more_ready "$n" || { kill $cpid; fail "shortcertd did not come back (round $round)"; }
	echo "MARK ready $round" >>"$T/clients.log"
	sleep 4
done
wait $cpid
restarts=$(grep -c "^RESTARTING" "$H/run/$D.log" || true)
ok=$(grep -c '^ok' "$T/clients.log" || true)
bad=$(grep -c '^FAIL' "$T/clients.log" || true)
# failures outside the windows [MARK restart N, MARK ready N]
outside=$(awk '/^MARK restart/ { w = 1 } /^MARK ready/ { w = 0 } /^FAIL/ && !w' "$T/clients.log" | wc -l)
after=$(awk '/^MARK ready 3/ { a = 1; next } a && /^ok/' "$T/clients.log" | wc -l)
note "$restarts restarts; $ok connections ok, $bad failed ($outside outside a restart window); $after ok after the last restart"
((restarts == 3)) || fail "expected 3 restarts, saw $restarts"
((outside == 0)) || { grep -n "FAIL\|MARK" "$T/clients.log" | head; fail "$outside connections failed outside a restart window"; }
((after >= 10)) || fail "too few connections after the last restart: $after"
(($(grep -c '^ok psql' "$T/clients.log") > 0 && $(grep -c '^ok haproxy' "$T/clients.log") > 0)) || fail "a service never answered"
note "the restarted daemon renews and delivers to both services"
ctl renew svc | contains "renewal of 'svc' requested" || fail "renew request"
both() { (($(grep -c "Target '[a-z]*' (identity 'svc'): serves serial" "$H/run/$D.log") >= 2)); }
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait both || { grep "Target" "$H/run/$D.log" | tail -4; fail "the renewal was not delivered to both"; }
new=$(grep "AUDIT renewed identity=svc" "$H/run/$D.log" | tail -1 | grep -o 'serial=[0-9A-F]*' | cut -d= -f2)
[[ $(tls_check "$HSNI" "$HPORT" tls1_3) == "serial=$new" ]] || fail "haproxy does not serve $new"
[[ $(pgt_serial) == "$new" ]] || fail "postgres does not serve $new"
[[ $(hp_workers "$master") == "$worker" ]] || fail "haproxy's worker changed"
[[ $(hp_reloads "$HD" "$worker") == 0 ]] || fail "haproxy was reloaded"
[[ $(head -1 "$PG/data/postmaster.pid") == "$pm" ]] && kill -0 "$pm" || fail "the postmaster was restarted"
pg_stop "$PGN"
h_kill "$HP"
h_kill "$D"
