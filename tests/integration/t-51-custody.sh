# SPDX-License-Identifier: Apache-2.0
# Key custody, measured: real services load the key reference through the
# provider, make handshakes in their forked workers and backends, and then
# the memory of every one of their processes (/proc/PID/mem, all readable
# mappings) is searched for the private key's secret numbers, in both byte
# orders (tests/tools/memscan).  With shortcert nothing may be found.  Each
# service is then run again with a plain PEM key file -- a copy of the same
# key, and for nginx also fresh RSA and Ed25519 keys -- and the same scan
# must find the secrets: that is what shows the scan can see them.  (So
# must a scan of shortcertd, which does hold the key.)
#   nginx 1.22: root master + 2 workers (nobody)
#   postgres 15: postmaster, its auxiliary processes, and live backends
ca_up
D=$TNAME-shortcertd
NG=$TNAME-nginx
PG=$TNAME-postgres
PORT=8443
SNI=web.internal.test
SCAN=$BUILD/tests/tools/memscan

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps test)"

sc_config "$T/sc.conf" web "$SNI, 127.0.0.1" "allow-users = nobody"
cat >>"$T/sc.conf" <<EOF

[identity db]
names = db.internal.test, 127.0.0.1
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
lifetime = 10m
chain-file = $T/out/db.crt
ref-file = $T/out/db.ref
ref-owner = postgres
ref-mode = 0600
allow-users = postgres
EOF
# The same service with shortcert keys of the other types: RSA (d, p and q
# are searched) and Ed25519 (the seed).
for kt in rsa-2048 ed25519; do
	cat >>"$T/sc.conf" <<EOF

[identity web-$kt]
names = $SNI, 127.0.0.1
key-type = $kt
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
lifetime = 10m
chain-file = $T/out/web-$kt.crt
ref-file = $T/out/web-$kt.ref
allow-users = nobody
EOF
done
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/web.crt" || fail "no certificate for web"
sc_wait_file "$T/out/db.crt" || fail "no certificate for db"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
WEBKEY=$T/state/identities/web/current/key.pem
DBKEY=$T/state/identities/db/current/key.pem
[[ $(stat -c '%a %U' "$WEBKEY") == "600 root" ]] || fail "unexpected key file mode"

# scan NAME KEY PID : memscan KEY over PID and its descendants; prints the
# summary, sets $scan_rc (0 clean, 1 found) and $scan_out.  A scan that
# could not read a process fails the test (rc 2).
scan() {
	local name=$1 key=$2 pid=$3
	scan_rc=0
	scan_out=$("$SCAN" "$key" "$pid" 2>&1) || scan_rc=$?
	echo "$scan_out" >"$T/scan-$name.txt"
	[[ $scan_rc != 2 ]] || { echo "$scan_out" | tail -5 >&2; fail "$name: the scan failed"; }
	note "$name: $(echo "$scan_out" | tail -1)"
}
# procs : how many processes the last scan covered.
procs() { echo "$scan_out" | sed -n 's/^scanned \([0-9]*\) process.*/\1/p'; }

# --- nginx -------------------------------------------------------------------
NGD=$T/nginx
nginx_run() { # KEY CHAIN [OPENSSL_CONF]
	h_nginx_conf "$NGD" "$PORT" "$2" "$1" "$SNI"
	h_nginx_start "$NG" "$NGD" "${3:-}" || fail "nginx did not start"
	# Enough fresh connections that both workers sign (or load) something.
	for _ in 1 2 3 4; do
		for v in tls1_3 tls1_2; do
			h_ns timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername "$SNI" \
				"-$v" </dev/null >/dev/null 2>&1 || fail "nginx: $v handshake failed"
		done
	done
}

note "nginx with the key reference (provider), handshakes verified, then scanned"
nginx_run "$T/out/web.ref" "$T/out/web.crt" "$T/openssl.cnf"
for v in tls1_3 tls1_2; do tls_check "$SNI" "$PORT" "$v" >/dev/null || fail "nginx: $v not verified"; done
scan nginx-shortcert "$WEBKEY" "$(h_pid "$NG")"
[[ $scan_rc == 0 ]] || { grep FOUND "$T/scan-nginx-shortcert.txt" | head -5; fail "key bytes found in nginx with shortcert"; }
(($(procs) >= 3)) || fail "the scan did not cover master and workers ($(procs) processes)"
scan shortcertd "$WEBKEY" "$(h_pid "$D")"
[[ $scan_rc == 1 ]] || fail "the scan did not find the key in shortcertd, which holds it"
h_kill "$NG"

for kt in rsa-2048 ed25519; do
	note "nginx with a $kt key reference (provider), then scanned"
	sc_wait_file "$T/out/web-$kt.crt" || fail "no certificate for web-$kt"
	nginx_run "$T/out/web-$kt.ref" "$T/out/web-$kt.crt" "$T/openssl.cnf"
	for v in tls1_3 tls1_2; do tls_check "$SNI" "$PORT" "$v" >/dev/null || fail "nginx $kt: $v not verified"; done
	k=$T/state/identities/web-$kt/current/key.pem
	scan "nginx-shortcert-$kt" "$k" "$(h_pid "$NG")"
	[[ $scan_rc == 0 ]] || { grep FOUND "$T/scan-nginx-shortcert-$kt.txt" | head -5; fail "$kt key bytes found in nginx with shortcert"; }
	# the same scan finds them in shortcertd, which holds the key
	scan "shortcertd-$kt" "$k" "$(h_pid "$D")"
	[[ $scan_rc == 1 ]] || fail "the scan did not find the $kt key in shortcertd, which holds it"
	if [[ $kt == rsa-2048 ]]; then
		for n in d p q; do
			grep -q "^pattern RSA $n (little-endian): [0-9]* bytes, [1-9]" "$T/scan-shortcertd-$kt.txt" ||
				fail "RSA $n not found in shortcertd"
		done
	fi
	h_kill "$NG"
done

note "control: nginx with a plain copy of the same key"
mkdir -p "$T/plain"
install -m 600 "$WEBKEY" "$T/plain/web.key"
nginx_run "$T/plain/web.key" "$T/out/web.crt"
scan nginx-plain-ec "$WEBKEY" "$(h_pid "$NG")"
[[ $scan_rc == 1 ]] || fail "the scan did not find the EC key in nginx that loaded it"
grep -q "little-endian): 32 bytes, [1-9]" "$T/scan-nginx-plain-ec.txt" ||
	fail "the parsed scalar (little-endian) was not found"
h_kill "$NG"

note "control: nginx with a fresh RSA-2048 key file (d, p and q are searched)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/plain/rsa.key" -out "$T/plain/rsa.crt" \
	-days 1 -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" 2>/dev/null || fail "RSA key"
nginx_run "$T/plain/rsa.key" "$T/plain/rsa.crt"
scan nginx-plain-rsa "$T/plain/rsa.key" "$(h_pid "$NG")"
[[ $scan_rc == 1 ]] || fail "the scan did not find the RSA key in nginx that loaded it"
for n in d p q; do
	grep -q "^pattern RSA $n (little-endian): [0-9]* bytes, [1-9]" "$T/scan-nginx-plain-rsa.txt" ||
		fail "RSA $n not found in nginx that loaded it"
done
h_kill "$NG"

note "control: nginx with a fresh Ed25519 key file (the 32-byte seed is searched)"
openssl req -x509 -newkey ed25519 -nodes -keyout "$T/plain/ed.key" -out "$T/plain/ed.crt" \
	-days 1 -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" 2>/dev/null || fail "Ed25519 key"
nginx_run "$T/plain/ed.key" "$T/plain/ed.crt"
scan nginx-plain-ed25519 "$T/plain/ed.key" "$(h_pid "$NG")"
[[ $scan_rc == 1 ]] || fail "the scan did not find the Ed25519 key in nginx that loaded it"
h_kill "$NG"

# --- postgres ----------------------------------------------------------------
PGD=$T/pg
pg_init "$PGD" "$T/out/db.crt" "$T/out/db.ref"
echo "hostssl all all 127.0.0.1/32 trust" >>"$PGD/data/pg_hba.conf"

PSQL_CONN="host=127.0.0.1 user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_CA_ROOT"
pg_run() { # [OPENSSL_CONF]
	pg_start "$PG" "$PGD" "${1:-}"
	# A session that stays open: its backend is scanned live.
	h_bg "$PG-session" psql "$PSQL_CONN application_name=held" -Atc "select pg_sleep(600)"
	held() { [[ $(h_ns psql "$PSQL_CONN" -Atc "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.application_name = 'held' and s.ssl") == 1 ]]; }
	h_wait held || fail "the held TLS session did not start"
	for max in TLSv1.3 TLSv1.2; do
		got=$(h_ns psql "$PSQL_CONN ssl_max_protocol_version=$max" -Atc \
			"select version from pg_stat_ssl where pid = pg_backend_pid()") || fail "psql over $max"
		[[ $got == "$max" ]] || fail "psql: $got, wanted $max"
	done
}

note "postgres 15 with ssl_key_file = the reference (postgres 0600), OPENSSL_CONF in its environment"
[[ $(stat -c '%a %U' "$T/out/db.ref") == "600 postgres" ]] || fail "reference mode/owner"
pg_run "$T/openssl.cnf"
pm=$(h_pid "$PG")
grep -q shortcert.so "/proc/$pm/maps" || fail "the postmaster did not load the provider"
scan postgres-shortcert "$DBKEY" "$pm"
[[ $scan_rc == 0 ]] || { grep FOUND "$T/scan-postgres-shortcert.txt" | head -5; fail "key bytes found in postgres with shortcert"; }
# postmaster, checkpointer, background writer, walwriter, autovacuum
# launcher, logical replication launcher, and the held backend.
(($(procs) >= 6)) || fail "the scan covered only $(procs) postgres processes"
h_kill "$PG-session"
pg_stop "$PG"

note "control: postgres with a plain copy of the same key (postgres 0600)"
install -o postgres -g postgres -m 600 "$DBKEY" "$PGD/server.key"
echo "ssl_key_file = '$PGD/server.key'" >>"$PGD/data/postgresql.conf"
pg_run
scan postgres-plain "$DBKEY" "$(h_pid "$PG")"
[[ $scan_rc == 1 ]] || fail "the scan did not find the key in postgres that loaded it"
h_kill "$PG-session"
pg_stop "$PG"
h_kill "$D"
