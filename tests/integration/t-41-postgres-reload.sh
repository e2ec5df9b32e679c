# SPDX-License-Identifier: Apache-2.0
# Delivery to an unmodified PostgreSQL 15: the postmaster (as postgres)
# loads ssl_cert_file = the chain and ssl_key_file = the key reference
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
PORT=5432
SNI=db.internal.test
PG=$T/pg
PGBIN=/usr/lib/postgresql/15/bin

[[ -x $PGBIN/postgres ]] || fail "postgresql-15 is not installed (scripts/install-deps test)"
mkdir -p "$PG/tls" "$PG/sock" "$PG/data"
chmod 755 "$T" "$PG"
chown postgres:postgres "$PG/tls" "$PG/sock" "$PG/data"
chmod 700 "$PG/data"
runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -A trust -U postgres --no-sync >"$T/initdb.log" 2>&1 ||
	{ tail -5 "$T/initdb.log"; fail "initdb failed"; }

sc_config "$T/sc.conf" db "$SNI" "allow-users = postgres" \
	"renew-at = 60%" "renew-jitter = 1%" "lifetime = 1m"
cat >>"$T/sc.conf" <<EOF

[target postgres]
identity = db
chain-file = $PG/tls/server.crt
ref-file = $PG/tls/server.ref
owner = postgres
group = postgres
mode = 0600
action = signal HUP $PG/data/postmaster.pid first-line
verify = 127.0.0.1:$PORT starttls=postgres sni=$SNI
verify-tries = 20
EOF
sc_start "$D" "$T/sc.conf"
sc_wait_file "$PG/tls/server.ref" || fail "no key reference for postgres"
[[ $(stat -c %a:%U "$PG/tls/server.ref") == 600:postgres ]] || fail "reference: $(stat -c %a:%U "$PG/tls/server.ref")"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
chmod 644 "$T/openssl.cnf"

cat >>"$PG/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PG/sock'
ssl = on
ssl_cert_file = '$PG/tls/server.crt'
ssl_key_file = '$PG/tls/server.ref'
ssl_ciphers = 'ECDHE+AESGCM:ECDHE+CHACHA20'
ssl_min_protocol_version = 'TLSv1.2'
fsync = off
EOF
echo "hostssl all all 127.0.0.1/32 trust" >>"$PG/data/pg_hba.conf"
# setpriv execs: the PID h_bg records is the postmaster itself.
h_bg "$PGN" env OPENSSL_CONF="$T/openssl.cnf" setpriv --reuid=postgres --regid=postgres --init-groups -- \
	"$PGBIN/postgres" -D "$PG/data"
pm=$(h_pid "$PGN")
pg_check() {
	h_ns timeout 10 psql "host=$SNI hostaddr=127.0.0.1 port=$PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_CA_ROOT connect_timeout=5" \
		-Atc "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
}
pg_serial() {
	local out
	out=$(h_ns timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$PORT" -servername "$SNI" \
		-verify_return_error -verify_hostname "$SNI" -CAfile "$H_CA_ROOT" -no-CApath -no-CAstore </dev/null 2>&1) || return 1
	contains "Verify return code: 0 (ok)" <<<"$out" || return 1
	openssl x509 -noout -serial <<<"$out"
}
pg_ready() { [[ $(pg_check) == t ]]; }
H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait pg_ready || { tail -20 "$H/run/$PGN.log"; fail "postgres did not come up with TLS"; }
[[ $(head -1 "$PG/data/postmaster.pid") == "$pm" ]] || fail "postmaster.pid does not name $pm"
note "postmaster $pm serves TLS with the key reference: $(pg_serial)"

note "client loop (psql verify-full, s_client -starttls postgres) while shortcertd renews"
loop() {
	local end=$(($(date +%s) + $1)) s
	while (($(date +%s) < end)); do
		if [[ $(pg_check 2>/dev/null) == t ]]; then echo "ok psql"; else echo "FAIL psql $(date +%T.%N)"; fi
		if s=$(pg_serial 2>/dev/null); then echo "ok s_client ${s#serial=}"; else echo "FAIL s_client $(date +%T.%N)"; fi
	done
}
base=$(grep -c "AUDIT renewed identity=db" "$H/run/$D.log" || true)
renewed_n() { (($(grep -c "AUDIT renewed identity=db" "$H/run/$D.log") >= base + $1)); }
loop 60 >"$T/clients.log" &
cpid=$!
H_WAIT_TRIES=900 H_WAIT_SLEEP=0.1 h_wait renewed_n 3 || { kill $cpid; fail "fewer than 3 renewals"; }
wait $cpid
ok=$(grep -c '^ok' "$T/clients.log" || true)
bad=$(grep -c '^FAIL' "$T/clients.log" || true)
renewed=$(grep "AUDIT renewed identity=db" "$H/run/$D.log" | tail -n +$((base + 1)) | grep -o 'serial=[0-9A-F]*' | cut -d= -f2)
note "$ok connections ok, $bad failed; $(echo "$renewed" | wc -l) renewals; serial runs seen: $(awk '$2 == "s_client" {print $3}' "$T/clients.log" | uniq | wc -l)"
(($(grep -c '^ok psql' "$T/clients.log") > 0)) || fail "no psql connection succeeded"
((bad == 0)) || { grep FAIL "$T/clients.log" | head -5; tail -5 "$H/run/$PGN.log"; fail "$bad connections failed during renewals"; }
last=$(echo "$renewed" | tail -1)
for s in $renewed; do
	awk '$2 == "s_client" {print $3}' "$T/clients.log" | contains "^$s$" || {
		[[ $s == "$last" ]] || fail "clients never saw serial $s"
	}
done
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
h_kill "$PGN" INT
H_WAIT_TRIES=100 h_wait bash -c "! kill -0 $pm" || true
h_kill "$PGN"
h_kill "$D"
