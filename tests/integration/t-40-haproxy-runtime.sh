# SPDX-License-Identifier: Apache-2.0
# Delivery to an unmodified haproxy 2.6 in master-worker mode with 2
# threads, serving a combined PEM (chain, then the key reference) through
# the provider: shortcertd renews a 1-minute certificate (same key) about
# every 12 s, writes the combined file and hot-swaps it into the running
# worker over the runtime API (`set ssl cert` + `commit ssl cert` on the
# worker's stats socket), then checks the endpoint serves the new leaf.
# A client loop makes fresh TLS 1.3 and 1.2 connections the whole time:
# none may fail, every new serial must be seen, and haproxy must not have
# been reloaded (same master, same worker, no reexec in its log).
ca_up
D=$TNAME-shortcertd
HP=$TNAME-haproxy
PORT=8443
SNI=api.internal.test
HD=$T/haproxy

command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps test)"
mkdir -p "$HD"
chmod 755 "$HD"

sc_config "$T/sc.conf" api "$SNI" "allow-users = haproxy" \
	"renew-at = 60%" "renew-jitter = 1%" "lifetime = 1m"
cat >>"$T/sc.conf" <<EOF

[target haproxy]
identity = api
combined-file = $HD/api.pem
group = haproxy
mode = 0640
action = haproxy $HD/admin.sock
verify = 127.0.0.1:$PORT sni=$SNI
verify-tries = 20
EOF
sc_start "$D" "$T/sc.conf"
sc_wait_file "$HD/api.pem" || fail "no combined PEM"
contains "BEGIN CERTIFICATE" <"$HD/api.pem" || fail "the combined PEM has no certificate"
[[ $(stat -c %a:%G "$HD/api.pem") == 640:haproxy ]] || fail "combined PEM: $(stat -c %a:%G "$HD/api.pem")"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

cat >"$HD/haproxy.cfg" <<EOF
global
    master-worker
    nbthread 2
    user haproxy
    group haproxy
    pidfile $HD/haproxy.pid
    stats socket $HD/admin.sock mode 600 level admin
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe_tls
    bind 127.0.0.1:$PORT ssl crt $HD/api.pem
    http-request return status 200 content-type text/plain string "hello from haproxy"
EOF
h_ns env OPENSSL_CONF="$T/openssl.cnf" haproxy -c -f "$HD/haproxy.cfg" >>"$H/run/$HP.log" 2>&1 ||
	{ tail -20 "$H/run/$HP.log"; fail "haproxy -c refused the configuration"; }
h_bg "$HP" env OPENSSL_CONF="$T/openssl.cnf" haproxy -db -f "$HD/haproxy.cfg" -S "$HD/master.sock"
master=$(h_pid "$HP")
workers() { echo $(h_nginx_workers_of "$master"); }
hp_ready() { [[ -n $(workers) ]] && tls_check "$SNI" "$PORT" tls1_3; }
H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait hp_ready || { tail -20 "$H/run/$HP.log"; fail "haproxy did not come up"; }
worker=$(echo $(workers))
[[ $(wc -w <<<"$worker") == 1 ]] || fail "expected one worker, got: $worker"
[[ $(ps -o user= -p "$worker") == haproxy ]] || fail "the worker runs as $(ps -o user= -p "$worker")"
[[ $(ls /proc/"$worker"/task | wc -l) -ge 2 ]] || fail "the worker has fewer than 2 threads"
note "haproxy master $master, worker $worker ($(ls /proc/"$worker"/task | wc -l) threads)"

note "client loop running while shortcertd renews and hot-swaps the certificate"
loop() {
	local end=$(($(date +%s) + $1)) v
	while (($(date +%s) < end)); do
		for v in tls1_3 tls1_2; do
			if s=$(tls_check "$SNI" "$PORT" "$v" 2>/dev/null); then
				echo "ok $v ${s#serial=}"
			else
				echo "FAIL $v $(date +%T.%N)"
			fi
		done
	done
}
base=$(grep -c "AUDIT renewed identity=api" "$H/run/$D.log" || true)
renewed_n() { (($(grep -c "AUDIT renewed identity=api" "$H/run/$D.log") >= base + $1)); }
loop 60 >"$T/clients.log" &
cpid=$!
H_WAIT_TRIES=900 H_WAIT_SLEEP=0.1 h_wait renewed_n 3 || { kill $cpid; fail "fewer than 3 renewals"; }
wait $cpid
ok=$(grep -c '^ok' "$T/clients.log" || true)
bad=$(grep -c '^FAIL' "$T/clients.log" || true)
renewed=$(grep "AUDIT renewed identity=api" "$H/run/$D.log" | tail -n +$((base + 1)) | grep -o 'serial=[0-9A-F]*' | cut -d= -f2)
note "$ok handshakes ok, $bad failed; $(echo "$renewed" | wc -l) renewals; serial runs seen by clients: $(awk '{print $3}' "$T/clients.log" | uniq | wc -l)"
((ok > 0)) || fail "no handshake succeeded"
((bad == 0)) || { grep FAIL "$T/clients.log" | head -5; fail "$bad handshakes failed during renewals"; }
last=$(echo "$renewed" | tail -1)
for s in $renewed; do
	awk '{print $3}' "$T/clients.log" | contains "^$s$" || {
		[[ $s == "$last" ]] || fail "clients never saw serial $s"
	}
done
served=$(grep -c "Target 'haproxy' (identity 'api'): serves serial" "$H/run/$D.log" || true)
note "shortcertd confirmed the new serial at haproxy $served times"
((served >= 3)) || fail "live verification did not confirm the hot swaps"
# No reload: the same master and worker, no reexec.
[[ $(workers) == "$worker" ]] || fail "haproxy's worker changed: $worker -> $(workers)"
kill -0 "$master" || fail "haproxy's master is gone"
if contains "[Rr]eexec\|New worker.*forked" <<<"$(tail -n +2 "$H/run/$HP.log" | grep -v "New worker ($worker) forked")"; then
	fail "haproxy was reloaded: $(grep -i "reexec\|New worker" "$H/run/$HP.log")"
fi
reloads=$(echo "show proc" | h_ns socat stdio "unix-connect:$HD/master.sock" | awk -v w="$worker" '$1 == w { print $3 }')
note "haproxy master CLI: worker $worker has reloads=$reloads"
[[ $reloads == 0 ]] || fail "haproxy's worker reports $reloads reloads"
echo "show ssl cert $HD/api.pem" | h_ns socat stdio "unix-connect:$HD/admin.sock" >"$T/show.txt"
contains "^Serial: " <"$T/show.txt" || fail "show ssl cert: $(cat "$T/show.txt")"
st=$(status_json)
[[ $(jq -r '.identities[0].targets[0].result' <<<"$st") == served ]] || fail "status: $(jq -c '.identities[0].targets' <<<"$st")"
(($(jq -r '.identities[0].targets[0].deliveries_ok' <<<"$st") >= 3)) || fail "status counts: $(jq -c '.identities[0].targets' <<<"$st")"
note "status: $(jq -c '.identities[0].targets[0] | {result, deliveries_ok, deliveries_failed, verify_failures}' <<<"$st")"
h_kill "$HP"
h_kill "$D"
