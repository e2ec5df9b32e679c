# SPDX-License-Identifier: Apache-2.0
# Metrics, scraped for real: shortcertd serves GET /metrics on a loopback
# address and a Unix socket; each scrape passes Prometheus' own
# `promtool check metrics`; the figures match the certificate, the
# signatures a TLS service made, and the CA's health.  With the CA stopped,
# a forced renewal fails: the error counters, the consecutive-failure gauge
# and shortcert_ca_up move; when the CA returns they recover.
ca_up
D=$TNAME-shortcertd
PORT=8460
MPORT=9464
command -v promtool >/dev/null || fail "promtool is not installed (scripts/install-deps test)"

sc_config "$T/sc.conf" api "api.internal.test, 127.0.0.1" "allow-users = nobody" \
	"retry-floor = 1s" "renew-jitter = 0%"
# daemon keys go into [daemon], at the top
sed -i "/^\[daemon\]/a metrics-listen = 127.0.0.1:$MPORT\nmetrics-socket = $T/run/metrics.sock\nca-health-interval = 1s" "$T/sc.conf"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"

scrape() { # NAME : scrape over TCP into $T/NAME.txt and check it with promtool
	h_ns curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/$1.txt" || fail "scrape $1 failed"
	promtool check metrics <"$T/$1.txt" >"$T/$1.promtool" 2>&1 ||
		{ cat "$T/$1.promtool" >&2; fail "promtool check metrics: $1"; }
}
# metric FILE 'NAME{LABELS}' : the sample's value (empty if absent)
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# live 'NAME{LABELS}' : the value in a fresh scrape
live() { h_ns curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
ca_is() { [[ $(live "shortcert_ca_up{ca=\"$H_CA_URL\"}") == "$1" ]]; }
fails_at_least() { local f; f=$(live 'shortcert_renewal_consecutive_failures{identity="api"}'); [[ -n $f ]] && ((f >= $1)); }
fails_zero() { [[ $(live 'shortcert_renewal_consecutive_failures{identity="api"}') == 0 ]]; }

note "a TLS service signs through shortcertd"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
h_bg "$TNAME-s_server" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$PORT" \
	-cert "$T/out/api.crt" -cert_chain "$T/out/api.crt" -key "$T/out/api.ref" -no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" || fail "s_server did not start"
for v in tls1_3 tls1_2 tls1_3; do tls_check api.internal.test "$PORT" "$v" >/dev/null || fail "$v handshake"; done
# a peer not on the allow list (daemon), and one purpose refusal (a JWS)
rc=0
h_ns setpriv --reuid=daemon --regid=daemon --clear-groups -- \
	"$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/api.ref" tls13-server-cv >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "uid daemon was not refused (exit $rc)"
rc=0
as_user nobody "$BUILD/tests/integration/sc-sign" "$T/run/shortcert.sock" "$T/out/api.ref" jws >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "a JWS was not refused (exit $rc)"

note "scrape over TCP and the Unix socket; promtool check metrics"
h_wait ca_is 1 || fail "shortcert_ca_up never became 1"
scrape healthy
h_ns curl -sf --unix-socket "$T/run/metrics.sock" http://localhost/metrics >"$T/unix.txt" || fail "Unix socket scrape"
promtool check metrics <"$T/unix.txt" >/dev/null 2>&1 || fail "promtool: Unix socket scrape"
contains '^shortcert_identities 1$' <"$T/unix.txt" || fail "Unix socket: no identities gauge"
[[ $(stat -c %a "$T/run/metrics.sock") == 600 ]] || fail "metrics socket is not 0600"

na=$(date -d "$(openssl x509 -in "$T/out/api.crt" -noout -enddate | cut -d= -f2)" +%s)
got=$(metric "$T/healthy.txt" 'shortcert_certificate_not_after_timestamp_seconds{identity="api"}')
[[ $got == "$na" ]] || fail "not_after $got, the certificate says $na"
left=$(metric "$T/healthy.txt" 'shortcert_certificate_remaining_seconds{identity="api"}')
((left > 0 && left <= 600)) || fail "remaining seconds $left"
ok=$(metric "$T/healthy.txt" 'shortcert_sign_requests_total{identity="api",result="ok"}')
((ok >= 3)) || fail "sign_requests_total ok=$ok after 3 handshakes"
denied=$(metric "$T/healthy.txt" 'shortcert_sign_requests_total{identity="api",result="denied"}')
((denied >= 1)) || fail "the refused peer was not counted (denied=$denied)"
purpose=$(metric "$T/healthy.txt" 'shortcert_sign_requests_total{identity="api",result="purpose"}')
((purpose >= 1)) || fail "the JWS refusal was not counted (purpose=$purpose)"
hc=$(metric "$T/healthy.txt" 'shortcert_sign_duration_seconds_count{identity="api"}')
[[ $hc == "$ok" ]] || fail "signing latency histogram count $hc, ok signatures $ok"
enr=$(metric "$T/healthy.txt" 'shortcert_renewals_total{identity="api",method="acme",result="success"}')
[[ $enr == 1 ]] || fail "ACME enrollment not counted ($enr)"
[[ $(metric "$T/healthy.txt" 'shortcert_renewal_consecutive_failures{identity="api"}') == 0 ]] ||
	fail "failures while healthy"
contains '^shortcert_ca_request_duration_seconds_count{ca=".*"} [1-9]' <"$T/healthy.txt" ||
	fail "no CA request latency observed"
note "healthy: not_after $na, $ok signatures, $denied refused, CA up"

note "CA stopped, renewal forced: errors, consecutive failures and CA availability move"
h_ca_stop
ctl renew api >/dev/null || fail "shortcertctl renew"
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.1 h_wait fails_at_least 2 || fail "consecutive failures did not reach 2"
h_wait ca_is 0 || fail "shortcert_ca_up did not drop to 0"
scrape outage
unreach=$(metric "$T/outage.txt" 'shortcert_renewal_errors_total{identity="api",reason="ca_unreachable"}')
((unreach >= 2)) || fail "renewal_errors_total ca_unreachable=$unreach"
mfail=$(metric "$T/outage.txt" 'shortcert_renewals_total{identity="api",method="mtls",result="failure"}')
((mfail >= 1)) || fail "no failed mTLS renewal counted ($mfail)"
[[ $(metric "$T/outage.txt" 'shortcert_certificate_not_after_timestamp_seconds{identity="api"}') == "$na" ]] ||
	fail "the certificate changed while the CA was down"
note "outage: $unreach unreachable errors, $mfail failed mTLS renewals, CA down"

note "CA back: renewed, failures reset, CA up"
h_ca_start
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.1 h_wait fails_zero || fail "consecutive failures did not return to 0"
h_wait ca_is 1 || fail "shortcert_ca_up did not return to 1"
scrape recovered
msucc=$(metric "$T/recovered.txt" 'shortcert_renewals_total{identity="api",method="mtls",result="success"}')
[[ $msucc == 1 ]] || fail "mTLS renewal after recovery not counted ($msucc)"
na2=$(metric "$T/recovered.txt" 'shortcert_certificate_not_after_timestamp_seconds{identity="api"}')
((na2 > na)) || fail "not_after did not move forward ($na2 <= $na)"
last=$(metric "$T/recovered.txt" 'shortcert_renewal_last_success_timestamp_seconds{identity="api"}')
((last >= $(date +%s) - 60)) || fail "last success $last is not recent"
note "recovered: renewed over mTLS, not_after +$((na2 - na))s"

note "only GET /metrics is served"
code=$(h_ns curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")
[[ $code == 404 ]] || fail "GET /other gave $code"
h_kill "$TNAME-s_server"
h_kill "$D"
