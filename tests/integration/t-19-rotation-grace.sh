# SPDX-License-Identifier: Apache-2.0
# Key rotation while a server runs that never reloads (openssl s_server
# keeps the reference it loaded): it keeps serving through the grace
# period, signing with the retired key generation (shortcertd says so); the
# new chain and reference replace the old ones as a pair; after the grace
# the retired key is removed and the old reference is refused with a
# clear error.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
PORT=8451
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 10m" \
	"rotate-grace = 15s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
cp "$T/out/api.crt" "$T/old.crt"
cp "$T/out/api.ref" "$T/old.ref"
h_bg "$TNAME-s_server" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/old.crt" -cert_chain "$T/old.crt" -key "$T/old.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "first handshake"
gen0=$(status_json | jq -r '.identities[0].key_generation')

ctl rotate api >/dev/null
h_wait grep -q "AUDIT rekeyed identity=api" "$H/run/$D.log" || fail "no rotation"
t_rot=$(date +%s)
gen1=$(status_json | jq -r '.identities[0].key_generation')
note "rotated $gen0 -> $gen1"
[[ $gen1 != "$gen0" ]] || fail "the key did not change"
grep -q "key generation ${gen1}" "$T/out/api.ref" || fail "the reference was not replaced"
[[ $(openssl x509 -in "$T/out/api.crt" -noout -pubkey) != "$(openssl x509 -in "$T/old.crt" -noout -pubkey)" ]] ||
	fail "the chain was not replaced"
[[ $(status_json | jq -r '.identities[0].retired_generations[0].key_generation') == "$gen0" ]] ||
	fail "the old generation is not listed as retired"

note "during the grace the server with the old reference keeps serving"
n=0
while (($(date +%s) < t_rot + 12)); do
	tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "handshake failed $(( $(date +%s) - t_rot ))s into the grace"
	n=$((n + 1))
	sleep 0.5
done
note "$n handshakes during the grace, all with the retired key"
grep -q "still signs with a retired key generation" "$H/run/$D.log" || fail "retired-key use not reported"

note "after the grace the retired key is gone"
gone() { [[ $(status_json | jq '.identities[0].retired_generations | length') == 0 ]]; }
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait gone || fail "the retired generation is still usable after its grace"
grep -q "AUDIT retired identity=api key_generation=$gen0" "$H/run/$D.log" || fail "no audit line for the retirement"
[[ ! -e $T/state/identities/api/gen-$gen0 ]] || fail "the retired key is still on disk"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null 2>&1 && fail "the old reference still signs after the grace"
h_wait grep -q "key generation is not current" "$H/run/$TNAME-s_server.log" || fail "no clear error for the stale reference"
grep -m1 "key generation is not current" "$H/run/$TNAME-s_server.log" | sed 's/^.*shortcert: /    s_server: shortcert: /'
h_kill "$TNAME-s_server"
h_kill "$D"
