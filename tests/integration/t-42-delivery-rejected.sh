# SPDX-License-Identifier: Apache-2.0
# A delivery the service rejects: the [target] writes PostgreSQL's key
# reference as postgres:postgres 0640, which postgres refuses for a key
# file its own user owns.  The files are put right by hand (0600) for the
# start, then shortcertctl rotate makes a new key and certificate:
# shortcertd writes the pair (0640 again), sends SIGHUP, postgres logs "SSL
# configuration was not reloaded" and keeps serving the old certificate
# with the old key.  shortcertd sees the old serial through STARTTLS,
# escalates to its second action (which fails too), logs the failure once
# and counts it in the status; the old key generation stays usable, so
# clients keep connecting with the old certificate.
ca_up
D=$TNAME-shortcertd
PGN=$TNAME-postgres
PORT=$PG_PORT
SNI=$PG_SNI
pgt_init

sc_config "$T/sc.conf" db "$SNI" "allow-users = postgres"
pgt_target db 0640 "action = exec /usr/bin/false" "verify-tries = 5"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$PG/tls/server.ref" || fail "no key reference for postgres"
chmod 0600 "$PG/tls/server.ref" # what postgres accepts, for its start
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
pgt_start "$PGN" "$T/openssl.cnf"
pm=$(h_pid "$PGN")
old=$(pgt_serial)
st=$(status_json)
gen0=$(jq -r '.identities[0].key_generation' <<<"$st")
note "postgres serves $old (key generation $gen0)"

note "rotate: the new reference is written 0640, which postgres refuses"
ctl rotate db | contains "key rotation of 'db' requested" || fail "rotate request"
failed() { contains "Target 'postgres' (identity 'db'): delivery of serial" <"$H/run/$D.log"; }
H_WAIT_TRIES=600 H_WAIT_SLEEP=0.1 h_wait failed || fail "shortcertd did not report the failed delivery"
new=$(openssl x509 -in "$PG/tls/server.crt" -noout -serial | cut -d= -f2)
[[ $new != "$old" ]] || fail "no new certificate was written"
[[ $(stat -c %a "$PG/tls/server.ref") == 640 ]] || fail "the reference is $(stat -c %a "$PG/tls/server.ref")"
contains "SSL configuration was not reloaded" <"$H/run/$PGN.log" || fail "postgres did not refuse the files"
note "postgres: $(grep -m1 "has group or world access" "$H/run/$PGN.log" | sed 's/.*FATAL: *//; s/.*LOG: *//')"
grep "Target 'postgres'" "$H/run/$D.log" | tail -3 | sed 's/^/    /'
(($(grep -c "Target 'postgres' (identity 'db'): delivery of serial $new failed" "$H/run/$D.log") == 1)) ||
	fail "the failure was not logged exactly once"
contains "'/usr/bin/false' exited with status 1" <"$H/run/$D.log" || fail "no escalation to the second action"

# The old certificate still serves, with the old key: the old generation
# must still sign.
[[ $(pgt_serial) == "$old" ]] || fail "postgres serves $(pgt_serial), not the old $old"
for i in 1 2 3; do
	[[ $(pgt_check) == t ]] || fail "a client could not connect to the old certificate ($i)"
done
st=$(status_json)
t=$(jq -c '.identities[0].targets[0]' <<<"$st")
note "status: $t"
[[ $(jq -r .result <<<"$t") == not-served ]] || fail "status result: $t"
(($(jq -r .verify_failures <<<"$t") >= 1)) || fail "verify failures not counted: $t"
(($(jq -r .deliveries_failed <<<"$t") >= 1)) || fail "failed deliveries not counted: $t"
(($(jq -r .escalations <<<"$t") >= 1)) || fail "escalation not counted: $t"
jq -r '.identities[0].retired_generations[].key_generation' <<<"$st" | contains "^$gen0$" ||
	fail "the old key generation $gen0 is no longer usable: $(jq -c '.identities[0].retired_generations' <<<"$st")"
[[ $(jq -r '.identities[0].key_generation' <<<"$st") != "$gen0" ]] || fail "no new key generation"
[[ $(h_pid "$PGN") == "$pm" ]] && kill -0 "$pm" || fail "the postmaster was restarted"
pg_stop "$PGN"
h_kill "$D"
