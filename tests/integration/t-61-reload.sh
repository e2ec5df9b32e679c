# SPDX-License-Identifier: Apache-2.0
# Configuration reload on the real step-ca.  Identities a and b; an
# unmodified s_server signs with b through the provider under a client loop
# making handshakes all along.  SIGHUP with a removed and c added: c is
# enrolled; b is undisturbed (no handshake fails, same serial and key
# generation, its signing counter continues); a still signs for a service
# that uses it (warned), then, unused for retire-after, is retired: it no
# longer signs, its certificate is revoked at step-ca (step-ca refuses to
# renew it: the revocation is real) and its state is moved aside, keys
# kept.  Then a broken config through shortcertctl reload is refused with
# file:line and exit 1, and the running configuration goes on (b signs, c
# renews).
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
PORT=8461
jwk=("enroll = jwk" "jwk-provisioner = $H_JWK_PROV" "jwk-password-file = $H_JWK_PASSWORD_FILE")
# ident NAME [EXTRA...] : an identity section
ident() {
	local n=$1
	shift
	printf '\n[identity %s]\nnames = %s.internal.test\nca-url = %s\nca-root = %s\n' "$n" "$n" "$H_CA_URL" "$H_CA_ROOT"
	printf 'chain-file = %s/out/%s.crt\nref-file = %s/out/%s.ref\nallow-users = nobody\n' "$T" "$n" "$T" "$n"
	printf '%s\n' "${jwk[@]}" "$@"
}
daemon() {
	printf '[daemon]\nstate-dir = %s/state\nsocket = %s/run/shortcert.sock\n' "$T" "$T"
	printf 'admin-socket = %s/run/admin.sock\nmetrics-socket = %s/run/metrics.sock\n' "$T" "$T"
	printf 'log-level = debug\nretire-after = 6s\n'
}
mkdir -p "$T/state" "$T/out"
chmod 755 "$T" "$T/out"
{ daemon; ident a "revoke-on-remove = yes"; ident b "lifetime = 10m"; } >"$T/sc.conf"
sc_start "$D" "$T/sc.conf"
log=$H/run/$D.log
sc_wait_file "$T/out/a.crt" || fail "a not enrolled"
sc_wait_file "$T/out/b.crt" || fail "b not enrolled"
metric() {
	h_ns curl -sf --unix-socket "$T/run/metrics.sock" http://localhost/metrics |
		awk -v k="$1" '$1 == k { print $2 }'
}
field() { status_json | jq -r --arg n "$1" ".identities[] | select(.name == \$n) | .$2"; }

sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
sc_s_server "$TNAME-s_server" "$PORT" b
# The client loop: one line per handshake, "ok" or "bad", until told to stop.
cat >"$T/clients.sh" <<EOC
while [[ ! -e $T/stop ]]; do
	if timeout 10 openssl s_client -connect 127.0.0.1:$PORT -servername b.internal.test \
		-verify_return_error -verify_hostname b.internal.test -CAfile $H_CA_ROOT \
		-no-CApath -no-CAstore </dev/null >$T/last.out 2>&1 &&
		grep -q "Verify return code: 0 (ok)" $T/last.out; then
		echo ok >>$T/handshakes
	else
		echo bad >>$T/handshakes; cp $T/last.out $T/bad-\$(date +%s%N).out
	fi
done
EOC
: >"$T/handshakes"
h_bg "$TNAME-clients" bash "$T/clients.sh"
count() { grep -c "^$1\$" "$T/handshakes" || true; }
h_wait bash -c "(( \$(grep -c '^ok\$' '$T/handshakes') >= 5 ))" || fail "the client loop does not get through"

b_serial=$(field b serial) b_gen=$(field b key_generation)
b_signs=$(metric 'shortcert_sign_requests_total{identity="b",result="ok"}')
a_serial_hex=$(openssl x509 -in "$T/out/a.crt" -noout -serial | cut -d= -f2)
a_serial=$(python3 -c "print(int('$a_serial_hex', 16))")
note "before: b serial $b_serial generation $b_gen, $b_signs signatures; a serial $a_serial"
[[ -n $b_serial && -n $b_gen && $b_signs -gt 0 ]] || fail "no state of b"

note "SIGHUP: a removed, c added (b unchanged)"
{ daemon; ident b "lifetime = 10m"; ident c "lifetime = 20s" "renew-jitter = 0%"; } >"$T/sc.conf.new"
mv "$T/sc.conf.new" "$T/sc.conf"
ok_at_reload=$(count ok)
h_kill "$D" HUP
h_wait grep -q "reloaded: 1 added, 0 changed, 1 removed, 1 unchanged" "$log" ||
	fail "no reload: $(grep -i reload "$log" | tail -5)"
sc_wait_file "$T/out/c.crt" || fail "c was not enrolled after the reload"
note "c enrolled: $(field c serial)"

note "a, removed, still signs for a service that uses it (and is warned about)"
out=$(as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/a.ref" tls13-server-cv) ||
	fail "a removed identity stopped signing at once: $out"
h_wait grep -q "Identity 'a' was removed from the configuration but pid [0-9]* (uid 65534) still uses it" "$log" ||
	fail "no warning about a removed identity in use"
[[ $(field a removed) =~ ^[0-9]+$ ]] || fail "status does not show a as removed"
out=$(ctl status) || true
contains "REMOVED from the configuration" <<<"$out" || fail "shortcertctl status does not show a as removed: $out"
grep -q "AUDIT \(issued\|renewed\|rekeyed\) identity=a " <(sed -n '/reloaded: 1 added/,$p' "$log") &&
	fail "a removed identity was renewed"

note "a is retired after retire-after (6s) unused: revoked at step-ca, moved aside"
H_WAIT_TRIES=400 H_WAIT_SLEEP=0.1 h_wait grep -q "AUDIT revoked identity=a " "$log" || fail "a was not revoked"
line=$(grep "AUDIT revoked identity=a " "$log")
note "${line#*AUDIT }"
[[ $line == *"serial=$a_serial method=mtls"* ]] || fail "revoked another serial than a's ($a_serial): $line"
h_wait grep -q "AUDIT removed identity=a state=" "$log" || fail "a's state was not moved aside"
aside=$(ls -d "$T"/state/identities/.removed-a-*) || fail "no .removed-a-* directory"
[[ ! -e $T/state/identities/a ]] || fail "a's state directory is still in place"
key=$(ls "$aside"/gen-*/key.pem | head -1)
[[ -s $key ]] || fail "a's key was not kept"
rc=0
out=$(as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/a.ref" tls13-server-cv 2>&1) || rc=$?
[[ $rc == 3 ]] || fail "a retired identity still signs (rc $rc): $out"
# Evidence from the CA itself: step-ca refuses to renew the revoked
# certificate (mTLS with it), and renews c's, not revoked, all the same.
renew() {
	h_ns curl -s -o "$T/renew.out" -w '%{http_code}' --cacert "$H_CA_ROOT" --cert "$1" --key "$2" \
		-X POST "$H_CA_URL/1.0/renew"
}
code=$(renew "$T/out/a.crt" "$key")
note "step-ca /1.0/renew with a's certificate: HTTP $code $(head -c 200 "$T/renew.out")"
[[ $code == 401 ]] || fail "step-ca renewed a revoked certificate (HTTP $code)"
grep "path=/1.0/renew" "$H/run/ca.log" | grep "status=401" | tail -1 | grep -o 'error="[^"]*"' | sed 's/^/    step-ca: /' || true
grep "path=/1.0/renew" "$H/run/ca.log" | grep "status=401" | contains "has been revoked" ||
	fail "step-ca's log does not say the certificate is revoked"
ckey=$(ls "$T"/state/identities/c/current/key.pem)
code=$(renew "$T/out/c.crt" "$ckey")
[[ $code == 201 || $code == 200 ]] || fail "control: step-ca did not renew c's certificate (HTTP $code)"

note "b undisturbed across the reload"
[[ $(field b serial) == "$b_serial" && $(field b key_generation) == "$b_gen" ]] ||
	fail "b changed: serial $(field b serial) generation $(field b key_generation)"
b_signs2=$(metric 'shortcert_sign_requests_total{identity="b",result="ok"}')
((b_signs2 > b_signs)) || fail "b's signature counter did not continue ($b_signs -> $b_signs2)"
((b_signs2 >= b_signs + $(count ok) - ok_at_reload)) || fail "b's counter restarted: $b_signs -> $b_signs2"

note "a broken config through shortcertctl reload: refused, file:line, the old one runs on"
cp "$T/sc.conf" "$T/sc.conf.good"
printf '\n[identity broken\nnames = x.test\n' >>"$T/sc.conf"
bad_line=$(grep -n '^\[identity broken$' "$T/sc.conf" | cut -d: -f1)
rc=0
out=$(ctl reload 2>&1) || rc=$?
note "shortcertctl reload: rc $rc: $out"
[[ $rc == 1 ]] || fail "a broken config was not refused (rc $rc)"
[[ $out == *"$T/sc.conf:$bad_line:"* ]] || fail "the refusal does not name file:line ($T/sc.conf:$bad_line)"
grep -q "Configuration reload refused: $T/sc.conf:$bad_line:" "$log" || fail "the refusal is not logged"
note "a change of a daemon setting that cannot change at run time: refused, key named"
sed "s|^socket = .*|socket = $T/run/other.sock|" "$T/sc.conf.good" >"$T/sc.conf"
rc=0
out=$(ctl reload 2>&1) || rc=$?
[[ $rc == 1 && $out == *"[daemon] socket changed"* ]] || fail "a socket change was not refused by name (rc $rc): $out"
cp "$T/sc.conf.good" "$T/sc.conf"
out=$(ctl reload) || fail "reload of the unchanged file failed: $out"
[[ $out == *"0 added, 0 changed, 0 removed, 2 unchanged"* ]] || fail "an unchanged file changed something: $out"
c_renewals=$(grep -c "AUDIT renewed identity=c " "$log" || true)
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.1 h_wait bash -c "(( \$(grep -c 'AUDIT renewed identity=c ' '$log') > $c_renewals ))" ||
	fail "c is not renewed after the refused reload"
ok_now=$(count ok)
h_wait bash -c "(( \$(grep -c '^ok\$' '$T/handshakes') > $ok_now ))" || fail "b stopped signing"

note "c's lifetime changes (20s -> 40s): applied, c is re-enrolled with it"
span() {
	local s e
	s=$(date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s)
	e=$(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s)
	echo $((e - s))
}
(($(span "$T/out/c.crt") < 40)) || fail "c's certificate already spans $(span "$T/out/c.crt")s"
{ daemon; ident b "lifetime = 10m"; ident c "lifetime = 40s" "renew-jitter = 0%"; } >"$T/sc.conf"
out=$(ctl reload) || fail "reload with c changed: $out"
[[ $out == *"0 added, 1 changed, 0 removed, 1 unchanged"* ]] || fail "c's change was not seen: $out"
c_long() { (($(span "$T/out/c.crt") >= 40)); }
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait c_long ||
	fail "c was not re-issued with its new lifetime (spans $(span "$T/out/c.crt")s)"
note "c's certificate now spans $(span "$T/out/c.crt")s"
[[ $(field b serial) == "$b_serial" ]] || fail "b changed with c's change"
touch "$T/stop"
h_wait bash -c "! kill -0 $(h_pid "$TNAME-clients")" || true
ok=$(count ok) bad=$(count bad)
note "handshakes with b: $ok ok, $bad failed ($((ok - ok_at_reload)) after the first reload)"
((bad == 0)) || fail "$bad handshakes failed: $(cat "$T"/bad-*.out 2>/dev/null | tail -15)"
((ok > ok_at_reload)) || fail "no handshake after the reload"
h_kill "$TNAME-clients"
h_kill "$TNAME-s_server"
h_kill "$D"
