# SPDX-License-Identifier: Apache-2.0
# Delivery to an unmodified haproxy 2.6 in master-worker mode with 4
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

mkdir -p "$HD"
chmod 755 "$HD"

sc_config "$T/sc.conf" api "$SNI" "allow-users = haproxy" \
	"renew-at = 60%" "renew-jitter = 1%" "lifetime = 1m"
hp_target api "$HD" "$PORT" "$SNI"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$HD/api.pem" || fail "no combined PEM"
contains "BEGIN CERTIFICATE" <"$HD/api.pem" || fail "the combined PEM has no certificate"
[[ $(stat -c %a:%G "$HD/api.pem") == 640:haproxy ]] || fail "combined PEM: $(stat -c %a:%G "$HD/api.pem")"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

hp_start "$HP" "$HD" "$PORT" "$HD/api.pem" "$T/openssl.cnf"
master=$(h_pid "$HP")
workers() { hp_workers "$master"; }
worker=$(workers)
[[ $(wc -w <<<"$worker") == 1 ]] || fail "expected one worker, got: $worker"
[[ $(ps -o user= -p "$worker") == haproxy ]] || fail "the worker runs as $(ps -o user= -p "$worker")"
[[ $(ls /proc/"$worker"/task | wc -l) -ge 4 ]] || fail "the worker has fewer than 4 threads"
note "haproxy master $master, worker $worker ($(ls /proc/"$worker"/task | wc -l) threads)"

note "3 concurrent client loops while shortcertd renews and hot-swaps the certificate"
loop1() {
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
# handshakes in parallel land on different worker threads, each signing
# through its own connection to shortcertd
loop() {
	local i
	for i in 1 2 3; do loop1 "$1" & done
	wait
}
load_through_renewals api 3 60 loop
note "$ok handshakes ok, $bad failed; $(wc -l <<<"$renewed") renewals; serial runs seen by clients: $(awk '{print $3}' "$T/clients.log" | uniq | wc -l)"
((ok > 0)) || fail "no handshake succeeded"
((bad == 0)) || { grep FAIL "$T/clients.log" | head -5; fail "$bad handshakes failed during renewals"; }
assert_serials_seen
# the provider keeps one connection per thread: several threads signed
conns=$(grep -c "Connection from pid $worker " "$H/run/$D.log" || true)
note "the worker's threads opened $conns connections to shortcertd"
((conns >= 2)) || fail "only $conns connection(s) from the worker: its threads did not sign in parallel"
served=$(grep -c "Target 'haproxy' (identity 'api'): serves serial" "$H/run/$D.log" || true)
note "shortcertd confirmed the new serial at haproxy $served times"
((served >= 3)) || fail "live verification did not confirm the hot swaps"
# No reload: the same master and worker, no reexec.
[[ $(workers) == "$worker" ]] || fail "haproxy's worker changed: $worker -> $(workers)"
kill -0 "$master" || fail "haproxy's master is gone"
if contains "[Rr]eexec\|New worker.*forked" <<<"$(tail -n +2 "$H/run/$HP.log" | grep -v "New worker ($worker) forked")"; then
	fail "haproxy was reloaded: $(grep -i "reexec\|New worker" "$H/run/$HP.log")"
fi
reloads=$(hp_reloads "$HD" "$worker")
note "haproxy master CLI: worker $worker has reloads=$reloads"
[[ $reloads == 0 ]] || fail "haproxy's worker reports $reloads reloads"
# haproxy's memory holds what the file on disk holds (a later reload
# agrees).  Renewals go on meanwhile: shortcertd writes the file, then
# hot-swaps it, so allow an update in flight to finish.
mem_matches_file() {
	local want
	want=$(openssl x509 -in "$HD/api.pem" -noout -serial | cut -d= -f2)
	echo "show ssl cert $HD/api.pem" | h_ns socat stdio "unix-connect:$HD/admin.sock" >"$T/show.txt"
	contains "^Serial: 0*$want$" <"$T/show.txt"
}
H_WAIT_TRIES=50 H_WAIT_SLEEP=0.2 h_wait mem_matches_file ||
	fail "show ssl cert (want $(openssl x509 -in "$HD/api.pem" -noout -serial)): $(cat "$T/show.txt")"
st=$(status_json)
[[ $(jq -r '.identities[0].targets[0].result' <<<"$st") == served ]] || fail "status: $(jq -c '.identities[0].targets' <<<"$st")"
(($(jq -r '.identities[0].targets[0].deliveries_ok' <<<"$st") >= 3)) || fail "status counts: $(jq -c '.identities[0].targets' <<<"$st")"
note "status: $(jq -c '.identities[0].targets[0] | {result, deliveries_ok, deliveries_failed, verify_failures}' <<<"$st")"
h_kill "$HP"
h_kill "$D"
