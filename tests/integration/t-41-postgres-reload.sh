# SPDX-License-Identifier: Apache-2.0
# Delivery to an unmodified PostgreSQL 15 with an RSA-3072 key: the
# postmaster (as postgres) loads ssl_cert_file = the chain and ssl_key_file = the key reference
# through the provider (OPENSSL_CONF in its environment).  shortcertd
# renews a 1-minute certificate about every 12 s, writes the pair as
# postgres:postgres 0600 (what postgres demands of a key file it owns),
# sends SIGHUP to the PID on the first line of postmaster.pid, and checks
# the new leaf is served through PostgreSQL's STARTTLS (SSLRequest).  A
# client loop of psql with sslmode=verify-full, plus s_client -starttls
# postgres for the serial, runs the whole time: no connection may fail and
# every new serial must be seen; the postmaster is never restarted.
ca_up
D=$TNAME-shortcertd
PGN=$TNAME-postgres
PORT=$PG_PORT
SNI=$PG_SNI
pgt_init

# An RSA-3072 key (the other services' tests use EC): PSS in TLS 1.3,
# PKCS#1 or PSS in TLS 1.2, ECDHE only (ssl_ciphers).
sc_config "$T/sc.conf" db "$SNI" "allow-users = postgres" \
	"renew-at = 60%" "renew-jitter = 1%" "lifetime = 1m" "key-type = rsa-3072"
pgt_target db 0600 "verify-tries = 20"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$PG/tls/server.ref" || fail "no key reference for postgres"
[[ $(stat -c %a:%U "$PG/tls/server.ref") == 600:postgres ]] || fail "reference: $(stat -c %a:%U "$PG/tls/server.ref")"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

pgt_start "$PGN" "$T/openssl.cnf"
pm=$(h_pid "$PGN")
[[ $(head -1 "$PG/data/postmaster.pid") == "$pm" ]] || fail "postmaster.pid does not name $pm"
note "postmaster $pm serves TLS with the key reference: $(pgt_serial)"
openssl x509 -in "$PG/tls/server.crt" -noout -text | contains "Public-Key: (3072 bit)" ||
	fail "the served certificate is not RSA-3072"

note "client loop (psql verify-full, s_client -starttls postgres) while shortcertd renews"
loop() {
	local end=$(($(date +%s) + $1)) s
	while (($(date +%s) < end)); do
		if [[ $(pgt_check 2>/dev/null) == t ]]; then echo "ok psql"; else echo "FAIL psql $(date +%T.%N)"; fi
		if s=$(pgt_serial 2>/dev/null); then echo "ok s_client $s"; else echo "FAIL s_client $(date +%T.%N)"; fi
	done
}
load_through_renewals db 3 60 loop
note "$ok connections ok, $bad failed; $(wc -l <<<"$renewed") renewals; serial runs seen: $(awk '$2 == "s_client" {print $3}' "$T/clients.log" | uniq | wc -l)"
(($(grep -c '^ok psql' "$T/clients.log") > 0)) || fail "no psql connection succeeded"
((bad == 0)) || { grep FAIL "$T/clients.log" | head -5; tail -5 "$H/run/$PGN.log"; fail "$bad connections failed during renewals"; }
assert_serials_seen
served=$(grep -c "Target 'postgres' (identity 'db'): serves serial" "$H/run/$D.log" || true)
note "shortcertd confirmed the new serial through STARTTLS $served times"
((served >= 3)) || fail "live verification did not confirm the reloads"
[[ $(h_pid "$PGN") == "$pm" ]] && kill -0 "$pm" || fail "the postmaster was restarted"
contains "received SIGHUP, reloading configuration files" <"$H/run/$PGN.log" || fail "postgres was never signalled"
if contains "SSL configuration was not reloaded" <"$H/run/$PGN.log"; then
	fail "postgres refused a delivery: $(grep -B2 "was not reloaded" "$H/run/$PGN.log" | head -3)"
fi
st=$(status_json)
[[ $(jq -r '.identities[0].targets[0].result' <<<"$st") == served ]] || fail "status: $(jq -c '.identities[0].targets' <<<"$st")"
note "status: $(jq -c '.identities[0].targets[0] | {result, deliveries_ok, deliveries_failed, verify_failures}' <<<"$st")"
pg_stop "$PGN"
h_kill "$D"
