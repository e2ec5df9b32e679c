# SPDX-License-Identifier: Apache-2.0
# shortcertd stopped (SIGSTOP) past its renewal point: after SIGCONT it
# renews within 30 seconds.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 28s" \
	"renew-jitter = 0%" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
at=$(date -d "$(status_json | jq -r '.identities[0].next_renewal')" +%s)
h_kill "$D" STOP
note "stopped; renewal was due in $((at - $(date +%s)))s"
while (($(date +%s) < at + 3)); do sleep 1; done
n0=$(grep -c "AUDIT renewed" "$H/run/$D.log" || true)
h_kill "$D" CONT
t0=$(date +%s)
more() { [[ $(grep -c "AUDIT renewed" "$H/run/$D.log") -gt $n0 ]]; }
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.1 h_wait more || fail "not renewed within 30 s of SIGCONT"
note "renewed $(( $(date +%s) - t0 ))s after SIGCONT (past due by $(( t0 - at ))s)"
h_kill "$D"
