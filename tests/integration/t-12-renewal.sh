# SPDX-License-Identifier: Apache-2.0
# Renewal on the real CA with short certificates: JWK enrollment (step-ca
# 0.19 backdates ACME certificates by a fixed minute, JWK ones by the
# configured backdate), several scheduled renewals over mTLS (same key, new
# serial, at two thirds of the lifetime), a forced renewal and a key
# rotation through the admin socket.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd

sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 20s" \
	"renew-jitter = 0%" "retry-floor = 1s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
gen0=$(status_json | jq -r '.identities[0].key_generation')
serial() { openssl x509 -in "$T/out/api.crt" -noout -serial | cut -d= -f2; }
s0=$(serial)
note "issued $s0 (22 s lifetime: 20 s asked + 2 s backdate), key generation $gen0"

renewed_n() { [[ $(grep -c "AUDIT renewed identity=api .*method=renew-mtls" "$H/run/$D.log") -ge $1 ]]; }
H_WAIT_TRIES=700 H_WAIT_SLEEP=0.1 h_wait renewed_n 3 || fail "fewer than 3 renewals in 70 s"
grep "AUDIT renewed" "$H/run/$D.log" | sed 's/^<[0-9]>/    /'
[[ $(grep "AUDIT renewed" "$H/run/$D.log" | grep -o 'serial=[0-9A-F]*' | sort -u | wc -l) -ge 3 ]] || fail "serials repeat"
[[ $(status_json | jq -r '.identities[0].key_generation') == "$gen0" ]] || fail "renewal changed the key"
[[ $(serial) != "$s0" ]] || fail "chain file not updated"

note "renewal time is two thirds of the lifetime"
st=$(status_json)
nb=$(date -d "$(echo "$st" | jq -r '.identities[0].not_before')" +%s)
na=$(date -d "$(echo "$st" | jq -r '.identities[0].not_after')" +%s)
next=$(date -d "$(echo "$st" | jq -r '.identities[0].next_renewal')" +%s)
want=$((nb + (na - nb) * 667 / 1000))
note "lifetime $((na - nb))s, renewal at +$((next - nb))s (want +$((want - nb))s)"
((next >= want - 1 && next <= want + 1)) || fail "renewal scheduled at $next, want $want"

note "shortcertctl renew: now"
before=$(grep -c "AUDIT renewed" "$H/run/$D.log")
ctl renew api | contains "renewal of 'api' requested" || fail "renew request"
more() { [[ $(grep -c "AUDIT renewed" "$H/run/$D.log") -gt $before ]]; }
H_WAIT_TRIES=50 H_WAIT_SLEEP=0.1 h_wait more || fail "forced renewal did not happen within 5 s"

note "shortcertctl rotate: a new key through /1.0/rekey"
ctl rotate api | contains "key rotation of 'api' requested" || fail "rotate request"
h_wait grep -q "AUDIT rekeyed identity=api .*method=rekey" "$H/run/$D.log" || fail "no rekey"
st=$(status_json)
gen1=$(echo "$st" | jq -r '.identities[0].key_generation')
[[ $gen1 != "$gen0" ]] || fail "rotation kept the key generation"
[[ $(echo "$st" | jq -r '.identities[0].retired_generations[0].key_generation') != null ]] ||
	fail "the old generation is not kept for its grace"
grep -q "key generation $(echo "$gen1" | cut -c1-16)" "$T/out/api.ref" || fail "reference not switched"
[[ $(openssl pkey -in "$T/state/identities/api/current/key.pem" -pubout) == \
   "$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)" ]] || fail "chain and key do not match after rotation"
note "rotated to key generation $gen1; $gen0 retired"
h_kill "$D"
