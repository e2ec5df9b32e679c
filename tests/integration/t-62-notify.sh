# SPDX-License-Identifier: Apache-2.0
# The sd_notify protocol for real, without systemd: a receiver (activator.py,
# no sockets) holds NOTIFY_SOCKET, WATCHDOG_USEC is 2s.  shortcertd sends
# READY=1 and a STATUS= line, WATCHDOG=1 pings while it runs, RELOADING=1
# then READY=1 around the reload that SIGHUP asks for (a STATUS= after it
# counts the new identity), and STOPPING=1 when it stops.  A stuck renewal
# scheduler stops the pings: gdb (non-stop mode) holds that one thread for
# 7 s while the others, the event loop included, run on.
ca_up
D=$TNAME-activator
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" \
	"enroll = jwk" "jwk-provisioner = $H_JWK_PROV" "jwk-password-file = $H_JWK_PASSWORD_FILE"
h_bg "$D" env WATCHDOG_USEC=2000000 /usr/bin/python3 "$H_REPO/tests/integration/activator.py" \
	-- "$BUILD/helper/shortcertd" -c "$T/sc.conf"
log=$H/run/$D.log
h_wait grep -q "NOTIFY READY=1" "$log" || fail "no READY=1 from shortcertd"
grep -q "^NOTIFY STATUS=1 identity" "$log" || fail "no STATUS= with the identity count: $(grep NOTIFY "$log")"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
pid=$(awk '/^STARTED/ { p = $2 } END { print p }' "$log")
[[ -n $pid ]] || fail "no pid of shortcertd"

note "watchdog: pings at half of WATCHDOG_USEC"
H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait bash -c "(( \$(grep -c '^NOTIFY WATCHDOG=1' '$log') >= 3 ))" ||
	fail "fewer than 3 WATCHDOG=1 pings: $(grep -c '^NOTIFY WATCHDOG=1' "$log")"
note "$(grep -c '^NOTIFY WATCHDOG=1' "$log") pings so far"

if command -v gdb >/dev/null; then
	note "the scheduler thread alone stopped (gdb) for 7s: the pings stop, then resume"
	cat >"$T/stop.gdb" <<EOG
set pagination off
set confirm off
set non-stop on
attach $pid
python
import gdb
for t in gdb.selected_inferior().threads():
    if t.name != 'sc-scheduler' and t.is_stopped():
        t.switch()
        gdb.execute('continue &')
for t in gdb.selected_inferior().threads():
    if t.name == 'sc-scheduler' and not t.is_stopped():
        t.switch()
        gdb.execute('interrupt')
end
shell sleep 7
detach
EOG
	rc=0
	timeout 60 gdb -q -batch -x "$T/stop.gdb" >"$T/gdb.out" 2>&1 || rc=$?
	kill -CONT "$pid" # a detach may leave a stop pending
	((rc == 0)) || fail "gdb: $(tail -5 "$T/gdb.out")"
	grep -q "The renewal scheduler has not run for [0-9]*s; withholding the watchdog ping" "$log" ||
		fail "the pings went on with the scheduler stopped"
	pings=$(grep -c '^NOTIFY WATCHDOG=1' "$log")
	h_wait bash -c "(( \$(grep -c '^NOTIFY WATCHDOG=1' '$log') > $pings ))" ||
		fail "no ping after the scheduler ran again"
	note "$(grep -o 'The renewal scheduler has not run for [0-9]*s' "$log" | head -1); pings resumed"
else
	note "SKIP the stuck-scheduler check: no gdb"
fi

note "SIGHUP with a second identity: RELOADING=1, READY=1, STATUS= says 2"
cat >>"$T/sc.conf" <<EOC

[identity web]
names = web.internal.test
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
lifetime = 10m
enroll = jwk
jwk-provisioner = $H_JWK_PROV
jwk-password-file = $H_JWK_PASSWORD_FILE
chain-file = $T/out/web.crt
ref-file = $T/out/web.ref
allow-users = nobody
EOC
before=$(grep -c "^NOTIFY READY=1" "$log")
kill -HUP "$pid"
h_wait bash -c "(( \$(grep -c '^NOTIFY READY=1' '$log') > $before ))" || fail "no READY=1 after the reload"
notes=$(grep "^NOTIFY" "$log")
awk '/^NOTIFY RELOADING=1/ { r = NR } /^NOTIFY READY=1/ { if (r) ok = 1 } END { exit !ok }' <<<"$notes" ||
	fail "no RELOADING=1 before READY=1: $notes"
grep -q "^NOTIFY MONOTONIC_USEC=[0-9]" <<<"$notes" || fail "RELOADING=1 without MONOTONIC_USEC"
grep -q "^NOTIFY STATUS=2 identities" <<<"$notes" || fail "no STATUS= after the reload: $notes"
sc_wait_file "$T/out/web.crt" || fail "the added identity was not enrolled"

note "SIGTERM: STOPPING=1"
kill -TERM "$pid"
h_wait grep -q "^NOTIFY STOPPING=1" "$log" || fail "no STOPPING=1"
grep "^NOTIFY STATUS=" "$log" | tail -1 | sed 's/^/    /'
h_kill "$D"
