# SPDX-License-Identifier: Apache-2.0
# A certificate that cannot be delivered (the chain file's directory is
# blocked) is kept, reported, and delivered later by retrying the write,
# never by enrolling again.
ca_up
D=$TNAME-shortcertd

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
sed -i "s|^chain-file = .*|chain-file = $T/blocked/api.crt|" "$T/sc.conf"
echo "not a directory" >"$T/blocked"
sc_start "$D" "$T/sc.conf"
H_WAIT_TRIES=400 h_wait grep -q "AUDIT issued identity=api" "$H/run/$D.log" || fail "no certificate issued"
h_wait grep -q "the service files could not be written (attempt 1)" "$H/run/$D.log" || fail "delivery failure not logged"
st=$(status_json)
[[ $(echo "$st" | jq -r '.identities[0].state') == valid ]] || fail "state: $st"
[[ $(echo "$st" | jq -r '.identities[0].delivered') == false ]] || fail "reported as delivered"
echo "$st" | jq -r '.identities[0].last_error' | contains "cannot write $T/blocked/api.crt" || fail "no reason in status"
rc=0
ctl status >"$T/ctl.out" || rc=$?
[[ $rc == 3 ]] && grep -q "NOT DELIVERED" "$T/ctl.out" || fail "shortcertctl status did not flag it (rc $rc)"
note "undelivered certificate reported: $(echo "$st" | jq -r '.identities[0].last_error')"

note "unblock the directory: the next retry delivers the same certificate"
serial=$(echo "$st" | jq -r '.identities[0].serial')
rm "$T/blocked"
mkdir "$T/blocked"
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait test -s "$T/blocked/api.crt" || fail "not delivered after unblocking"
[[ $(openssl x509 -in "$T/blocked/api.crt" -noout -serial | cut -d= -f2) == "$serial" ]] || fail "a different certificate was delivered"
[[ $(grep -c "AUDIT issued" "$H/run/$D.log") == 1 ]] || fail "re-enrolled instead of retrying the delivery"
[[ $(status_json | jq -r '.identities[0].delivered') == true ]] || fail "still not delivered"
h_kill "$D"
