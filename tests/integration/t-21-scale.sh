# SPDX-License-Identifier: Apache-2.0
# 200 identities on the real CA: all enrolled, all renewed before their
# certificates expire, and the signing latency of a served identity does
# not jump while the renewal workers are busy.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
N=200
mkdir -p "$T/out" "$T/state"
{
	printf '[daemon]\nstate-dir = %s/state\nsocket = %s/run/shortcert.sock\n' "$T" "$T"
	printf 'admin-socket = %s/run/admin.sock\nlog-level = notice\n' "$T"
	printf '[defaults]\nca-url = %s\nca-root = %s\nallow-users = nobody\n' "$H_CA_URL" "$H_CA_ROOT"
	printf 'enroll = jwk\njwk-provisioner = %s\njwk-password-file = %s\n' "$H_JWK_PROV" "$H_JWK_PASSWORD_FILE"
	printf 'lifetime = 40s\nretry-floor = 1s\n'
	printf '[identity api]\nnames = api.internal.test\nchain-file = %s/out/api.crt\nref-file = %s/out/api.ref\nlifetime = 10m\n' "$T" "$T"
	for i in $(seq -w 1 $N); do
		printf '[identity svc-%s]\nnames = svc-%s.internal.test\nchain-file = %s/out/%s.crt\nref-file = %s/out/%s.ref\n' \
			"$i" "$i" "$T" "$i" "$T" "$i"
	done
} >"$T/sc.conf"
t0=$(date +%s)
sc_start "$D" "$T/sc.conf"
valid_all() { [[ $(status_json | jq '[.identities[] | select(.state == "valid")] | length') == $((N + 1)) ]]; }
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.2 h_wait valid_all || fail "not all identities got a certificate"
note "$((N + 1)) identities enrolled in $(( $(date +%s) - t0 ))s"

lat() { as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/api.ref" \
	tls13-server-cv 2 "$1"; }
idle=$(lat 2000) || fail "latency run"
note "signing latency, idle (us): $idle"
# the renewals cluster about 2/3 into the 42 s lifetime: sign right through them
renewed() { [[ $(status_json | jq '[.identities[] | select(.renewals_with_key >= 1)] | length') -ge $N ]]; }
busy=""
for i in $(seq 1 40); do
	r=$(lat 400) || fail "latency run"
	busy+="$r"$'\n'
	renewed && break
done
H_WAIT_TRIES=300 H_WAIT_SLEEP=0.2 h_wait renewed || fail "not all $N identities renewed"
st=$(status_json)
expired=$(echo "$st" | jq '[.identities[] | select(.state != "valid")] | length')
note "all $N renewed ($(grep -c 'AUDIT renewed' "$H/run/$D.log") renewals in all), $expired not valid"
((expired == 0)) || fail "$expired identities are not valid"
grep -q "has EXPIRED" "$H/run/$D.log" && fail "a certificate expired"
p99_idle=$(echo "$idle" | awk '{print $4}')
p99_busy=$(echo "$busy" | awk 'NF {print $4}' | sort -n | tail -1)
note "worst p99 while renewing: ${p99_busy}us (idle p99 ${p99_idle}us)"
limit=$((p99_idle * 10 > 20000 ? p99_idle * 10 : 20000))
((p99_busy <= limit)) || fail "signing latency jumped during renewals: p99 ${p99_busy}us > ${limit}us"
h_kill "$D"
