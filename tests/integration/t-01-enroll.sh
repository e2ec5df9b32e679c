# SPDX-License-Identifier: Apache-2.0
# Enrollment on the real step-ca over ACME (http-01 answered by shortcertd),
# key custody on disk, the reference holding no secret, adoption after a
# restart, a corrupt key moved aside, and a bad config refused.
ca_up
D=$TNAME-shortcertd

note "a bad configuration names file:line and the daemon does not start"
printf '[identity api]\nnames = api.internal.test\nlifetime = 5x\n' >"$T/bad.conf"
out=$("$BUILD/helper/shortcertd" -c "$T/bad.conf" 2>&1) && fail "started with a bad config"
echo "$out" | contains "bad.conf:3: invalid duration '5x'" || fail "unclear error: $out"

note "enroll api.internal.test + 127.0.0.1"
sc_config "$T/sc.conf" api "api.internal.test, 127.0.0.1" "allow-users = nobody"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate after 20s"
sc_wait_file "$T/out/api.ref" || fail "no reference"
grep -q "AUDIT issued identity=api serial=" "$H/run/$D.log" || fail "no audit line"

note "the chain verifies to the root and names exactly the configured names"
awk 'n>=1{print} /END CERTIFICATE/{n++}' "$T/out/api.crt" >"$T/int.pem"
openssl verify -CAfile "$H_CA_ROOT" -untrusted "$T/int.pem" "$T/out/api.crt" | contains ': OK' ||
	fail "chain does not verify"
san=$(openssl x509 -in "$T/out/api.crt" -noout -ext subjectAltName | tail -1)
[[ $san == *"DNS:api.internal.test"* && $san == *"IP Address:127.0.0.1"* ]] || fail "SAN: $san"
nb=$(date -d "$(openssl x509 -in "$T/out/api.crt" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$T/out/api.crt" -noout -enddate | cut -d= -f2)" +%s)
life=$((na - nb))
note "lifetime ${life}s (asked for 10m; step-ca backdates notBefore by 1m)"
((life >= 600 && life <= 660)) || fail "lifetime $life"

note "the key stays root's: state 0700, key 0600, and it matches the certificate"
[[ $(stat -c %a "$T/state") == 700 ]] || fail "state dir mode $(stat -c %a "$T/state")"
[[ $(stat -c %a "$T/state/identities/api") == 700 ]] || fail "identity dir mode"
[[ $(stat -c '%a %U' "$T/state/identities/api/current/key.pem") == "600 root" ]] || fail "key file mode"
[[ $(stat -c '%a' "$T/state/identities/api/current/") == 700 ]] || fail "generation dir mode"
[[ $(openssl pkey -in "$T/state/identities/api/current/key.pem" -pubout) == \
   "$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)" ]] || fail "certificate is not for the held key"

note "the reference holds no private key material"
grep -q "BEGIN SHORTCERT KEY REFERENCE" "$T/out/api.ref" || fail "no reference label"
! grep -q PRIVATE "$T/out/api.ref" || fail "reference mentions a private key"
priv=$(openssl pkey -in "$T/state/identities/api/current/key.pem" -noout -text | awk '/^priv:/{f=1;next} /^pub:/{f=0} f' | tr -d ' :\n')
refhex=$(sed -n '/BEGIN SHORTCERT/,/END SHORTCERT/p' "$T/out/api.ref" | grep -v -- ----- | base64 -d | od -An -tx1 | tr -d ' \n')
[[ ${#priv} == 64 && ${#refhex} -gt 100 ]] || fail "could not extract bytes to compare"
[[ $refhex != *"$priv"* ]] || fail "private scalar found in the reference"
[[ $refhex != *"$(echo "$priv" | fold -w2 | tac | tr -d '\n')"* ]] || fail "private scalar (LE) in the reference"
spki=$(openssl x509 -in "$T/out/api.crt" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1 | tr -d ' \n')
[[ $refhex == *"$spki"* ]] || fail "the reference does not carry the certificate's public key"

note "shortcertctl status"
serial=$(openssl x509 -in "$T/out/api.crt" -noout -serial | cut -d= -f2)
st=$(status_json)
[[ $(echo "$st" | jq -r '.identities[0].state') == valid ]] || fail "status: $st"
[[ $(echo "$st" | jq -r '.identities[0].serial') == "$serial" ]] || fail "status serial"
ctl status

note "restart: the stored certificate is adopted, not re-enrolled"
h_kill "$D"
sc_start "$D" "$T/sc.conf"
h_wait grep -q "adopted stored certificate, serial $serial" "$H/run/$D.log" || fail "not adopted"
[[ $(grep -c "AUDIT issued" "$H/run/$D.log") == 1 ]] || fail "re-enrolled after restart"

note "a second daemon on the same state directory or socket does not start"
sed "s|^state-dir = .*|state-dir = $T/state2|" "$T/sc.conf" >"$T/other-state.conf"
out=$(h_ns "$BUILD/helper/shortcertd" -c "$T/sc.conf" 2>&1) && fail "a second daemon started"
[[ $out == *"Another shortcertd (pid $(h_pid "$D")) is using the state directory"* ]] || fail "unclear: $out"
out=$(h_ns "$BUILD/helper/shortcertd" -c "$T/other-state.conf" 2>&1) && fail "a second daemon took the socket"
[[ $out == *"Another process is listening on $T/run/shortcert.sock"* ]] || fail "unclear: $out"
status_json | jq -e '.pid == '"$(h_pid "$D")" >/dev/null || fail "the first daemon lost its socket"

note "a corrupt key file is moved aside, never overwritten, and a new key enrolled"
h_kill "$D"
gen=$(readlink "$T/state/identities/api/current")
echo "garbage" >"$T/state/identities/api/current/key.pem"
sc_start "$D" "$T/sc.conf"
h_wait grep -q "is unreadable; moved .*$gen aside" "$H/run/$D.log" || fail "corrupt key not reported"
ls -d "$T"/state/identities/api/"$gen".corrupt-* >/dev/null || fail "corrupt key not kept"
[[ $(cat "$T"/state/identities/api/"$gen".corrupt-*/key.pem) == garbage ]] || fail "corrupt key altered"
issued_twice() { [[ $(grep -c 'AUDIT issued' "$H/run/$D.log") -ge 2 ]]; }
serial_changed() { [[ $(openssl x509 -in "$T/out/api.crt" -noout -serial | cut -d= -f2) != "$serial" ]]; }
H_WAIT_TRIES=400 h_wait issued_twice || fail "no re-enrollment with the new key"
h_wait serial_changed || fail "chain file not replaced"
[[ $(openssl pkey -in "$T/state/identities/api/current/key.pem" -pubout) == \
   "$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)" ]] || fail "new certificate is not for the new key"
h_kill "$D"
