# SPDX-License-Identifier: Apache-2.0
# Several successive renewals while an unmodified nginx (master + 2
# workers as nobody) serves with the key reference (an Ed25519 key: the
# other services' tests use EC and RSA) and a client loop
# connects continuously: shortcertd writes the pair, signals nginx (SIGHUP
# to the PID in its pidfile, read afresh each time), checks the live
# endpoint serves the new certificate; no handshake fails, and the clients
# see every new serial.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
PORT=8450
N=$T/nginx
mkdir -p "$N"
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 20s" "key-type = ed25519" \
	"retry-floor = 1s" "enroll = jwk" "jwk-provisioner = $H_JWK_PROV" \
	"jwk-password-file = $H_JWK_PASSWORD_FILE" "reload-pidfile = $N/nginx.pid" \
	"verify-endpoint = 127.0.0.1:$PORT" "verify-sni = api.internal.test"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
openssl x509 -in "$T/out/api.crt" -noout -text | contains "Public Key Algorithm: ED25519" ||
	fail "the certificate is not Ed25519"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
h_nginx_conf "$N" "$PORT" "$T/out/api.crt" "$T/out/api.ref" api.internal.test
h_nginx_start "$TNAME-nginx" "$N" "$T/openssl.cnf" || fail "nginx did not start"
tls_check api.internal.test "$PORT" tls1_3 >/dev/null || fail "nginx does not serve through the provider"

note "client loop running while shortcertd renews and reloads nginx"
loop() {
	local end=$(($(date +%s) + $1)) v
	while (($(date +%s) < end)); do
		for v in tls1_3 tls1_2; do
			if s=$(tls_check api.internal.test "$PORT" "$v" 2>/dev/null); then
				echo "ok $v ${s#serial=}"
			else
				echo "FAIL $v $(date +%T.%N)"
			fi
		done
	done
}
renewed_n() { [[ $(grep -c "AUDIT renewed identity=api" "$H/run/$D.log") -ge $1 ]]; }
loop 55 >"$T/clients.log" &
cpid=$!
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.1 h_wait renewed_n 3 || { kill $cpid; fail "fewer than 3 renewals"; }
wait $cpid
ok=$(grep -c '^ok' "$T/clients.log")
bad=$(grep -c '^FAIL' "$T/clients.log" || true)
renewed=$(grep "AUDIT renewed identity=api" "$H/run/$D.log" | grep -o 'serial=[0-9A-F]*' | cut -d= -f2)
note "$ok handshakes ok, $bad failed; $(echo "$renewed" | wc -l) renewals; served serials: $(awk '{print $3}' "$T/clients.log" | uniq | wc -l) runs"
((bad == 0)) || { grep FAIL "$T/clients.log" | head -5; fail "$bad handshakes failed during renewals"; }
for s in $renewed; do
	na=$(grep "serial=$s " "$H/run/$D.log" | head -1)
	grep -q " $s$" "$T/clients.log" || {
		# the last one may have been renewed after the loop ended
		[[ $s == "$(echo "$renewed" | tail -1)" ]] || fail "clients never saw serial $s"
	}
done
verified=$(grep -c "every endpoint serves serial" "$H/run/$D.log")
note "shortcertd confirmed the new serial at the endpoint $verified times"
((verified >= 3)) || fail "live verification did not confirm the renewals"
grep -q "reload action done" "$H/run/$D.log" || fail "nginx was not signalled"
[[ $(status_json | jq -r '.identities[0].served') == yes ]] || fail "status does not say served"
h_nginx_stop "$TNAME-nginx"
h_kill "$D"
