# SPDX-License-Identifier: Apache-2.0
# Client-side mTLS with a key held by shortcertd: a `role = client` identity
# (client.internal.test, enrolled on the real step-ca; its first DNS name is
# the subject CN) authenticates to postgres 15, which requires
#   hostssl all all 127.0.0.1/32 cert clientcert=verify-full map=shortcert
# with ssl_ca_file = the CA root and maps that CN to the database user
# "app" (pg_ident.conf).  psql (libpq) runs as nobody with OPENSSL_CONF set
# and sslkey = the key reference (0600, owned by nobody, as libpq demands);
# `openssl s_client -starttls postgres` authenticates the same way.  The
# server identity's reference used as a client key is refused by
# shortcertd's purpose check, and no certificate means no login.
ca_up
D=$TNAME-shortcertd
PG=$TNAME-postgres
PGD=$T/pg

command -v psql >/dev/null || fail "psql is not installed (postgresql-client-15)"

# The server (postgres) and the client (psql as nobody) each have an identity.
sc_config "$T/sc.conf" db "db.internal.test, 127.0.0.1" "allow-users = postgres" \
	"ref-owner = postgres" "ref-mode = 0600"
cat >>"$T/sc.conf" <<EOF

[identity client]
names = client.internal.test
role = client
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
lifetime = 10m
chain-file = $T/out/client.crt
ref-file = $T/out/client.ref
ref-owner = nobody
ref-mode = 0600
allow-users = nobody
EOF
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/db.crt" || fail "no certificate for db"
sc_wait_file "$T/out/client.crt" || fail "no certificate for client"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

cn=$(openssl x509 -in "$T/out/client.crt" -noout -subject -nameopt RFC2253)
note "client certificate: $cn; $(openssl x509 -in "$T/out/client.crt" -noout -ext extendedKeyUsage | tail -1 | sed 's/^ *//')"
[[ $cn == "subject=CN=client.internal.test" ]] || fail "unexpected client subject: $cn"
openssl x509 -in "$T/out/client.crt" -noout -ext extendedKeyUsage | contains "TLS Web Client Authentication" ||
	fail "the client certificate has no clientAuth EKU"
[[ $(stat -c '%a %U' "$T/out/client.ref") == "600 nobody" ]] || fail "client reference mode/owner"

note "postgres 15: server key = reference, client certificates required (cert, verify-full, map)"
pg_init "$PGD" "$T/out/db.crt" "$T/out/db.ref"
echo "ssl_ca_file = '$H_CA_ROOT'" >>"$PGD/data/postgresql.conf"
# Only certificate logins over TLS; local socket for the setup below.
cat >"$PGD/data/pg_hba.conf" <<EOF
local all postgres trust
hostssl all all 127.0.0.1/32 cert clientcert=verify-full map=shortcert
EOF
echo "shortcert client.internal.test app" >>"$PGD/data/pg_ident.conf"
pg_start "$PG" "$PGD" "$T/openssl.cnf"
pg_sql "$PGD" "create role app login" >/dev/null || fail "create role"

CONN="host=127.0.0.1 port=5432 user=app dbname=postgres sslmode=verify-full sslrootcert=$H_CA_ROOT"
CLIENT="sslcert=$T/out/client.crt sslkey=$T/out/client.ref"
# psql_as USER CONNINFO SQL : psql in the namespace as USER, with the
# provider configured.
psql_as() {
	h_ns setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" HOME=/nonexistent psql "$2" -Atc "$3"
}
signs() { status_json | jq ".identities[] | select(.name == \"$1\") | .signatures.$2"; }

note "psql as nobody, sslkey = the client reference: logged in as app via the certificate"
before=$(signs client ok)
for max in TLSv1.3 TLSv1.2; do
	got=$(psql_as nobody "$CONN $CLIENT ssl_max_protocol_version=$max" \
		"select current_user, version, client_dn from pg_stat_ssl where pid = pg_backend_pid()" 2>&1) ||
		fail "psql over $max: $got"
	[[ $got == "app|$max|/CN=client.internal.test" ]] || fail "psql over $max: $got"
	note "$max: $got"
done
(($(signs client ok) >= before + 2)) || fail "shortcertd did not sign for the client"

note "no client certificate: no login"
out=$(psql_as nobody "$CONN" "select 1" 2>&1) && fail "logged in without a certificate"
echo "$out" | contains "certificate" || fail "unclear refusal: $out"

note "openssl s_client -starttls postgres with -key = the client reference: AuthenticationOk"
# A StartupMessage (protocol 3.0, user app, database postgres), then
# Terminate: postgres answers AuthenticationOk ('R', length 8, code 0) only
# if the certificate login succeeded, then closes.
startup='\x00\x00\x00\x24\x00\x03\x00\x00user\x00app\x00database\x00postgres\x00\x00X\x00\x00\x00\x04'
before=$(signs client ok)
for v in tls1_3 tls1_2; do
	hex=$(printf '%b' "$startup" | h_ns setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" timeout 10 openssl s_client -quiet -starttls postgres \
		-connect 127.0.0.1:5432 "-$v" -cert "$T/out/client.crt" -cert_chain "$T/out/client.crt" \
		-key "$T/out/client.ref" -CAfile "$H_CA_ROOT" -verify_return_error \
		-verify_hostname db.internal.test 2>"$T/s_client-$v.log" | od -An -tx1 | tr -d ' \n') ||
		{ tail -5 "$T/s_client-$v.log"; fail "s_client $v"; }
	[[ $hex == 520000000800000000* ]] ||
		{ tail -5 "$T/s_client-$v.log"; fail "s_client $v: no AuthenticationOk (got ${hex:0:40})"; }
	note "$v: AuthenticationOk for app"
done
(($(signs client ok) >= before + 2)) || fail "s_client did not sign with the client key"

note "the server identity's reference as a client key: refused by the purpose check"
before=$(signs db refused)
out=$(psql_as postgres "$CONN sslcert=$T/out/db.crt sslkey=$T/out/db.ref" "select 1" 2>&1) &&
	fail "logged in with the server identity's key"
h_wait grep -q "AUDIT refused identity=db uid=$(id -u postgres) pid=[0-9]* reason=purpose input='TLS 1.3 client CertificateVerify' role=server" \
	"$H/run/$D.log" || fail "no purpose refusal for identity db: $out"
(($(signs db refused) >= before + 1)) || fail "the refusal was not counted"
note "psql: $(echo "$out" | head -1)"
# And s_client over TLS 1.2, where the transcript is the signing input.
h_ns setpriv --reuid=postgres --regid=postgres --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" timeout 10 openssl s_client -starttls postgres \
	-connect 127.0.0.1:5432 -tls1_2 -cert "$T/out/db.crt" -key "$T/out/db.ref" \
	</dev/null >"$T/s_client-server-key.log" 2>&1 || true
h_wait grep -q "AUDIT refused identity=db .*reason=purpose input='TLS 1.2 client CertificateVerify.*role=server" \
	"$H/run/$D.log" || fail "no purpose refusal for the TLS 1.2 client transcript"
grep -q "refused to sign for identity 'db'" "$T/s_client-server-key.log" ||
	fail "s_client shows no clear refusal: $(tail -3 "$T/s_client-server-key.log")"

pg_stop "$PG"
h_kill "$D"
