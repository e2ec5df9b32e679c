# SPDX-License-Identifier: Apache-2.0
# SIGKILL of shortcertd in the middle of renewals, again and again: after
# each restart the files services read are whole and a matching pair, the
# key is there, and what was stored is adopted without enrolling again.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 1m" \
	"retry-floor = 1s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
pair_ok() {
	local ref_gen
	openssl x509 -in "$T/out/api.crt" -noout 2>/dev/null || return 1
	ref_gen=$(sed -n 's/.*key generation \([0-9a-f]*\).*/\1/p' "$T/out/api.ref")
	[[ $(openssl x509 -in "$T/out/api.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -c1-64) == "$ref_gen" ]]
}
for i in 1 2 3 4 5 6; do
	ctl renew api >/dev/null
	ctl rotate api >/dev/null
	sleep "0.0$((RANDOM % 10))"
	h_kill "$D" KILL
	sleep 0.2
	pair_ok || fail "round $i: the chain and the reference do not match"
	[[ -L $T/state/identities/api/current && -s $T/state/identities/api/current/key.pem ]] ||
		fail "round $i: the current key is missing"
	lines=$(wc -l <"$H/run/$D.log")
	sc_start "$D" "$T/sc.conf"
	adopted() { tail -n +"$lines" "$H/run/$D.log" | contains "adopted stored certificate"; }
	h_wait adopted || fail "round $i: the stored certificate was not adopted"
	pair_ok || fail "round $i: after restart the pair does not match"
done
note "6 SIGKILLs in the middle of renewals and rotations: the pair always matched"
sleep 2
[[ $(grep -c "AUDIT issued" "$H/run/$D.log") == 1 ]] || fail "enrolled again after a restart"
[[ $(status_json | jq -r '.identities[0].state') == valid ]] || fail "not valid at the end"
stale=$(find "$T/out" "$T/state" -name '*.tmp' | wc -l)
note "leftover temporary files: $stale"
[[ $stale == 0 ]] || fail "temporary files of killed writes were not cleaned up"
h_kill "$D"
