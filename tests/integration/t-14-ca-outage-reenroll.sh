# SPDX-License-Identifier: Apache-2.0
# The same outage with allowRenewalAfterExpiry off: the expired certificate
# cannot be renewed (mTLS refuses it, the token is refused with 401), so
# shortcertd enrolls again with its enrollment method and the same key.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s H_CA_ALLOW_AFTER_EXPIRY=false
ca_up
D=$TNAME-shortcertd
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 15s" \
	"renew-jitter = 0%" "retry-floor = 1s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
gen0=$(status_json | jq -r '.identities[0].key_generation')
na=$(date -d "$(openssl x509 -in "$T/out/api.crt" -noout -enddate | cut -d= -f2)" +%s)
h_ca_stop
while (($(date +%s) < na + 4)); do sleep 1; done
note "the certificate has expired; CA back"
h_ca_start
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait grep -q "token renew refused" "$H/run/$D.log" ||
	fail "the token renew was not refused"
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait grep -q "AUDIT renewed identity=api .*method=jwk" "$H/run/$D.log" ||
	fail "no re-enrollment"
grep "token renew refused" "$H/run/$D.log" | head -1 | sed 's/^<[0-9]>/    /'
[[ $(status_json | jq -r '.identities[0].key_generation') == "$gen0" ]] || fail "re-enrollment changed the key"
[[ $(status_json | jq -r '.identities[0].state') == valid ]] || fail "not valid after recovery"
h_kill "$D"
