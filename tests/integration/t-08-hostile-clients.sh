# SPDX-License-Identifier: Apache-2.0
# Hostile clients on the signing socket: oversize, garbage and truncated
# frames close that connection; a flood of connections from one uid is cut
# at max-connections-per-uid by closing its least recently used ones, so a
# process hoarding connections cannot lock out a service of the same uid;
# throughout, the daemon keeps serving a well-behaved client.
ca_up
D=$TNAME-shortcertd

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
sed -i 's/^log-level = debug/log-level = debug\nmax-connections-per-uid = 5/' "$T/sc.conf"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.ref" || fail "no reference"
sock=$T/run/shortcert.sock
sign() { as_user nobody "$BUILD/tests/integration/sc-sign" "$sock" "$T/out/api.ref" tls13-server-cv; }
hostile() { as_user nobody /usr/bin/python3 "$H_REPO/tests/integration/hostile-client.py" "$sock" "$@"; }

for c in oversize garbage truncated; do
	out=$(hostile "$c") || fail "$out"
	note "$out"
	sign >/dev/null || fail "the daemon stopped serving after '$c'"
done
grep -q "exceeds the 65536-byte limit" "$H/run/$D.log" || fail "oversize frame not logged"
grep -q "Malformed frame from pid" "$H/run/$D.log" || fail "malformed frame not logged"

out=$(hostile flood 20) || fail "$out"
note "$out (limit 5)"
[[ $out == *"5 kept, 15 closed"* ]] || fail "per-uid limit not applied: $out"
grep -q "limit (max-connections-per-uid)" "$H/run/$D.log" || fail "limit not logged"
sign >/dev/null || fail "the daemon stopped serving after the flood"
note "a well-behaved client is still served"

h_bg "$TNAME-hoarder" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	/usr/bin/python3 "$H_REPO/tests/integration/hostile-client.py" "$sock" hoard 5 30
h_wait grep -q hoarding "$H/run/$TNAME-hoarder.log" || fail "hoarder did not start"
sign >/dev/null || fail "a process hoarding 5 connections locked the uid out"
note "a process of the same uid hoarding the limit of connections does not lock it out"
h_kill "$TNAME-hoarder"
h_kill "$D"
