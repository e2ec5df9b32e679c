# SPDX-License-Identifier: Apache-2.0
# step-ca down for longer than the certificate lives, with
# allowRenewalAfterExpiry on: failures back off (no retry storm), the old
# certificate stays in place throughout, and when the CA returns the
# expired certificate is renewed with an x5c token.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s H_CA_ALLOW_AFTER_EXPIRY=true
ca_up
D=$TNAME-shortcertd
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 65s" \
	"renew-jitter = 0%" "retry-floor = 1s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
serial() { openssl x509 -in "$T/out/api.crt" -noout -serial | cut -d= -f2; }
s0=$(serial)
na=$(date -d "$(openssl x509 -in "$T/out/api.crt" -noout -enddate | cut -d= -f2)" +%s)
note "issued $s0, expires in $((na - $(date +%s)))s; stopping the CA"
h_ca_stop
t_stop=$(date +%s)
while (($(date +%s) < na + 8)); do
	[[ -s $T/out/api.crt && -s $T/out/api.ref ]] || fail "a service file disappeared during the outage"
	openssl x509 -in "$T/out/api.crt" -noout 2>/dev/null || fail "the chain file is damaged"
	sleep 1
done
attempts=$(grep -c "failed (attempt" "$H/run/$D.log" || true)
outage=$(($(date +%s) - t_stop))
note "CA down ${outage}s (the certificate expired $(( $(date +%s) - na ))s ago): $attempts attempts"
((attempts >= 3 && attempts <= outage / 2)) || fail "$attempts attempts in ${outage}s: no back-off, or no retries"
grep -q "the current certificate has EXPIRED" "$H/run/$D.log" || fail "expiry not reported"
grep -q "^<2>.*has EXPIRED" "$H/run/$D.log" || fail "an expired certificate is not logged at critical level"
[[ $(serial) == "$s0" ]] || fail "the old certificate was replaced while the CA was down"

note "CA back: the expired certificate is renewed with a token"
h_ca_start
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait grep -q "AUDIT renewed identity=api .*method=renew-token" "$H/run/$D.log" ||
	fail "no token renewal after the CA came back"
grep -q "mTLS renew refused" "$H/run/$D.log" || note "(mTLS was not tried: the certificate had expired)"
[[ $(serial) != "$s0" ]] || fail "the chain file was not updated"
[[ $(status_json | jq -r '.identities[0].state') == valid ]] || fail "not valid after recovery"
grep -v "AUDIT issued" "$H/run/$D.log" | contains "method=jwk" && fail "re-enrolled instead of renewing"
h_kill "$D"
