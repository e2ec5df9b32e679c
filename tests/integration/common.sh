#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Shared helpers of the integration tests (sourced for each t-*.sh).  A test
# runs with its own harness initialised ($H, h_* of tests/harness/lib.sh):
# it calls ca_up to get its own namespace and real step-ca ($H_CA_URL,
# $H_CA_ROOT), after setting any H_CA_* knobs it needs.  $BUILD is the meson
# build directory and $T the test's scratch directory.

TNAME=$(basename "${T:-none}")

# contains PATTERN : like `grep -q PATTERN` at the end of a pipe, but reads
# all its input first: with pipefail, grep -q quitting at the first match
# can kill the writer with SIGPIPE and fail the pipe although it matched.
contains() {
	local in
	in=$(cat)
	grep -q -- "$1" <<<"$in"
}

# ca_up : this test's namespace and step-ca.
ca_up() {
	H_QUIET=1 h_build_stepca
	h_ns_start
	h_pki
	h_ca_config
	h_ca_start
}

# fail MSG : print and exit non-zero (a test ends at its first failure).
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# note MSG : progress line of a test.
note() { echo "  - $*"; }

# expect_rc WANT CMD... : run CMD, fail unless it exits WANT.
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[[ $rc == "$want" ]] || fail "expected exit $want, got $rc from: $*"
}

# sc_config FILE IDENTITY NAMES [EXTRA...] : a shortcertd config for one
# identity with this test's state dir, sockets and output paths; each EXTRA
# "key = value" line is added to the identity section, replacing a default
# of the same key.
sc_config() {
	local file=$1 id=$2 names=$3 line key
	shift 3
	mkdir -p "$T/state" "$T/out"
	chmod 755 "$T" "$T/out"
	local -a defaults=(
		"ca-url = $H_CA_URL"
		"ca-root = $H_CA_ROOT"
		"lifetime = 10m"
		"chain-file = $T/out/$id.crt"
		"ref-file = $T/out/$id.ref"
	)
	{
		printf '[daemon]\nstate-dir = %s/state\nsocket = %s/run/shortcert.sock\n' "$T" "$T"
		printf 'admin-socket = %s/run/admin.sock\nlog-level = debug\n\n' "$T"
		printf '[identity %s]\nnames = %s\n' "$id" "$names"
		for line in "${defaults[@]}"; do
			key=${line%% =*}
			# (no pipe into grep -q: with pipefail its early exit would
			# count as "not found")
			local extra found=0
			for extra in "$@"; do
				[[ ${extra%% =*} == "$key" ]] && found=1
			done
			((found)) || echo "$line"
		done
		for line in "$@"; do echo "$line"; done
	} >"$file"
}

# sc_start NAME CONFIG : start shortcertd (in the namespace) and wait until
# its socket accepts connections.
sc_start() {
	local name=$1 conf=$2 sock
	sock=$(awk -F' *= *' '$1 == "socket" { print $2 }' "$conf")
	h_bg "$name" "$BUILD/helper/shortcertd" -c "$conf"
	h_wait test -S "$sock" || { tail -20 "$H/run/$name.log"; fail "shortcertd did not create $sock"; }
}

# sc_wait_file FILE [TRIES] : wait for a file to appear (enrollment).
sc_wait_file() {
	H_WAIT_TRIES=${2:-400} h_wait test -s "$1"
}

# sc_openssl_conf FILE SOCKET : a per-service OPENSSL_CONF that includes the
# shipped snippet (conf/openssl.cnf.d/shortcert.cnf) and points the provider
# at the build tree's module and at SOCKET.
sc_openssl_conf() {
	local file=$1 sock=$2
	cat >"$file" <<-EOF
		# per-service OpenSSL configuration (integration test)
		openssl_conf = openssl_init
		.include $H_REPO/conf/openssl.cnf.d/shortcert.cnf

		[shortcert_sect]
		module = $BUILD/provider/shortcert.so
		shortcert-socket = $sock
	EOF
}

# sc_s_server NAME PORT ID : an unmodified openssl s_server (as nobody, with
# $T/openssl.cnf, sc_openssl_conf) serving $T/out/ID.crt with the key
# reference $T/out/ID.ref on PORT; waits until it accepts connections.
sc_s_server() {
	local name=$1 port=$2 ident=$3
	h_bg "$name" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$port" \
		-cert "$T/out/$ident.crt" -cert_chain "$T/out/$ident.crt" -key "$T/out/$ident.ref" \
		-no-CAfile -no-CApath -no-CAstore
	h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "s_server did not start"
}

# as_user USER CMD... : run CMD in the namespace as USER (no supplementary
# groups), the way a service that dropped privileges runs.
as_user() {
	local user=$1
	shift
	h_ns setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"
}

# tls_check HOST PORT VERSION : an unmodified s_client that must verify the
# server's chain to the test root and the host name; prints the served serial.
tls_check() {
	local host=$1 port=$2 ver=$3 out
	out=$(h_ns timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$host" \
		"-$ver" -verify_return_error -verify_hostname "$host" -CAfile "$H_CA_ROOT" \
		-no-CApath -no-CAstore </dev/null 2>&1) || { echo "$out" | tail -15 >&2; return 1; }
	grep -q "Verify return code: 0 (ok)" <<<"$out" || { echo "$out" | tail -15 >&2; return 1; }
	echo "$out" | openssl x509 -noout -serial
}

# status_json [ADMIN_SOCKET] : shortcertctl status --json (its exit status 3,
# "an identity is not in order", is not an error here: callers look at the
# JSON).
status_json() {
	local rc=0
	"$BUILD/helper/shortcertctl" -s "${1:-$T/run/admin.sock}" status --json || rc=$?
	[[ $rc == 0 || $rc == 3 ]]
}

# ctl ARGS... : shortcertctl on this test's admin socket.
ctl() {
	"$BUILD/helper/shortcertctl" -s "$T/run/admin.sock" "$@"
}

# --- postgres 15 (t-51, t-52) ------------------------------------------------
PGBIN=/usr/lib/postgresql/15/bin

# pg_init DIR CERT KEY : a cluster in DIR/data (initdb as postgres, trust
# on the local socket DIR/sock) that listens on 127.0.0.1:5432 with TLS
# from CERT (chain) and KEY (a key reference or a key file).
pg_init() {
	local dir=$1
	[[ -x $PGBIN/postgres ]] || fail "postgresql-15 is not installed (scripts/install-deps test)"
	mkdir -p "$dir/sock"
	chown -R postgres:postgres "$dir"
	setpriv --reuid=postgres --regid=postgres --init-groups -- \
		"$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 ||
		{ tail -5 "$dir/initdb.log"; fail "initdb"; }
	cat >>"$dir/data/postgresql.conf" <<-EOC
		listen_addresses = '127.0.0.1'
		port = 5432
		unix_socket_directories = '$dir/sock'
		fsync = off
		ssl = on
		ssl_cert_file = '$2'
		ssl_key_file = '$3'
	EOC
}

# pg_sql DIR SQL : psql as postgres on the cluster's local socket.
pg_sql() {
	h_ns setpriv --reuid=postgres --regid=postgres --init-groups -- \
		psql -h "$1/sock" -U postgres -d postgres -Atc "$2"
}

# pg_start NAME DIR [OPENSSL_CONF] : the postmaster, in the namespace, as
# postgres (setpriv execs, so NAME's pid is the postmaster itself), with
# OPENSSL_CONF in its environment if given; waits until it answers.
pg_start() {
	local name=$1 dir=$2 env=()
	[[ -n ${3:-} ]] && env=(OPENSSL_CONF="$3")
	h_bg "$name" env "${env[@]}" setpriv --reuid=postgres --regid=postgres --init-groups -- \
		"$PGBIN/postgres" -D "$dir/data"
	H_WAIT_TRIES=400 h_wait pg_sql "$dir" "select 1" ||
		{ tail -5 "$H/run/$name.log"; fail "postgres did not start"; }
}

# pg_stop NAME : fast shutdown (SIGINT: sessions are ended), and wait.
pg_stop() {
	local pid
	pid=$(h_pid "$1")
	[[ -n $pid ]] || return 0
	kill -INT "$pid" 2>/dev/null || true
	h_wait bash -c "! kill -0 $pid 2>/dev/null" || fail "postgres did not stop"
	h_kill "$1"
}

# renewals ID : how many renewals of identity ID shortcertd ($D) has logged.
renewals() { grep -c "AUDIT renewed identity=$1 " "$H/run/$D.log" || true; }

_renewed_since() { (($(renewals "$1") >= $2 + $3)); }

# load_through_renewals ID N SECONDS LOOP : run `LOOP SECONDS` (a client
# loop printing one line per attempt: "ok WHAT [SERIAL]" or "FAIL WHAT
# ...") into $T/clients.log in the background, wait until shortcertd has
# renewed ID N more times, then for the loop to end.  Sets ok and bad (the
# counts) and renewed (the serials of those renewals, one per line).
load_through_renewals() {
	local id=$1 n=$2 secs=$3 loopfn=$4 base cpid
	base=$(renewals "$id")
	"$loopfn" "$secs" >"$T/clients.log" &
	cpid=$!
	H_WAIT_TRIES=$((secs * 10 + 300)) H_WAIT_SLEEP=0.1 h_wait _renewed_since "$id" "$base" "$n" ||
		{ kill "$cpid"; fail "fewer than $n renewals of $id"; }
	wait "$cpid"
	ok=$(grep -c '^ok' "$T/clients.log" || true)
	bad=$(grep -c '^FAIL' "$T/clients.log" || true)
	renewed=$(grep "AUDIT renewed identity=$id " "$H/run/$D.log" | tail -n +$((base + 1)) |
		grep -o 'serial=[0-9A-F]*' | cut -d= -f2)
}

# assert_serials_seen : every serial in $renewed reached a client (third
# field of an "ok" line of $T/clients.log), except perhaps the last, which
# may have come after the loop ended.
assert_serials_seen() {
	local s last
	last=$(tail -1 <<<"$renewed")
	for s in $renewed; do
		awk '$1 == "ok" { print $3 }' "$T/clients.log" | contains "^$s$" || {
			[[ $s == "$last" ]] || fail "clients never saw serial $s"
		}
	done
}

# --- PostgreSQL 15 behind a [target] (t-41..t-43; pg_stop and PGBIN are
# shared with the helpers of t-51/t-52 above): $PG is its directory, port
# $PG_PORT on 127.0.0.1 in the namespace, server name $PG_SNI; the chain
# and key reference are $PG/tls/server.crt and server.ref (written by
# shortcertd's [target]).
PG_PORT=5432
PG_SNI=db.internal.test

# pgt_init : initdb into $PG as the postgres user (trust, no fsync).
pgt_init() {
	PG=$T/pg
	[[ -x $PGBIN/postgres ]] || fail "postgresql-15 is not installed (scripts/install-deps test)"
	mkdir -p "$PG/tls" "$PG/sock" "$PG/data"
	chmod 755 "$T" "$PG"
	chown postgres:postgres "$PG/tls" "$PG/sock" "$PG/data"
	chmod 700 "$PG/data"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PG/data" -A trust -U postgres --no-sync >"$T/initdb.log" 2>&1 ||
		{ tail -5 "$T/initdb.log"; fail "initdb failed"; }
}

# pgt_start NAME OPENSSL_CONF : ssl = on with the pair, hostssl for
# 127.0.0.1, ECDHE only; the postmaster runs as postgres under h_bg NAME
# (setpriv execs, so the recorded PID is the postmaster) with OPENSSL_CONF
# in its environment; waits until psql gets TLS.
pgt_start() {
	local name=$1 oc=$2
	chmod 644 "$oc"
	cat >>"$PG/data/postgresql.conf" <<-EOC
		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		unix_socket_directories = '$PG/sock'
		ssl = on
		ssl_cert_file = '$PG/tls/server.crt'
		ssl_key_file = '$PG/tls/server.ref'
		ssl_ciphers = 'ECDHE+AESGCM:ECDHE+CHACHA20'
		ssl_min_protocol_version = 'TLSv1.2'
		fsync = off
	EOC
	echo "hostssl all all 127.0.0.1/32 trust" >>"$PG/data/pg_hba.conf"
	h_bg "$name" env OPENSSL_CONF="$oc" setpriv --reuid=postgres --regid=postgres --init-groups -- \
		"$PGBIN/postgres" -D "$PG/data"
	H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait pgt_ready || { tail -20 "$H/run/$name.log"; fail "postgres did not come up with TLS"; }
}

# pgt_check : one psql connection, sslmode=verify-full; prints "t" when the
# session is on TLS.
pgt_check() {
	h_ns timeout 10 psql "host=$PG_SNI hostaddr=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$H_CA_ROOT connect_timeout=5" \
		-Atc "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
}
pgt_ready() { [[ $(pgt_check) == t ]]; }

# pgt_serial : the serial postgres serves (s_client -starttls postgres,
# chain and name verified).
pgt_serial() {
	local out
	out=$(h_ns timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$PG_PORT" -servername "$PG_SNI" \
		-verify_return_error -verify_hostname "$PG_SNI" -CAfile "$H_CA_ROOT" -no-CApath -no-CAstore </dev/null 2>&1) || return 1
	contains "Verify return code: 0 (ok)" <<<"$out" || return 1
	openssl x509 -noout -serial <<<"$out" | cut -d= -f2
}


# --- haproxy 2.6 as a peer (t-40, t-43): master-worker, 4 threads, the
# worker as haproxy, the worker's stats socket at DIR/admin.sock and the
# master CLI at DIR/master.sock.

# hp_start NAME DIR PORT CRT OPENSSL_CONF : write DIR/haproxy.cfg (a TLS
# frontend on 127.0.0.1:PORT with `crt CRT`, ECDHE only, answering "hello
# from haproxy"), check it, start it under h_bg NAME (the PID is the
# master) and wait until a worker runs and the port accepts connections.
hp_start() {
	local name=$1 dir=$2 port=$3 crt=$4 oc=$5
	command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps test)"
	cat >"$dir/haproxy.cfg" <<-EOC
		global
		    master-worker
		    nbthread 4
		    user haproxy
		    group haproxy
		    pidfile $dir/haproxy.pid
		    stats socket $dir/admin.sock mode 600 level admin
		    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
		    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384
		defaults
		    mode http
		    timeout connect 5s
		    timeout client 10s
		    timeout server 10s
		frontend fe_tls
		    bind 127.0.0.1:$port ssl crt $crt
		    http-request return status 200 content-type text/plain string "hello from haproxy"
	EOC
	h_ns env OPENSSL_CONF="$oc" haproxy -c -f "$dir/haproxy.cfg" >>"$H/run/$name.log" 2>&1 ||
		{ tail -20 "$H/run/$name.log"; fail "haproxy -c refused the configuration"; }
	h_bg "$name" env OPENSSL_CONF="$oc" haproxy -db -f "$dir/haproxy.cfg" -S "$dir/master.sock"
	H_WAIT_TRIES=100 H_WAIT_SLEEP=0.1 h_wait _hp_ready "$(h_pid "$name")" "$port" ||
		{ tail -20 "$H/run/$name.log"; fail "haproxy did not come up"; }
}
_hp_ready() { [[ -n $(hp_workers "$1") ]] && h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$2"; }

# hp_workers MASTER_PID : the worker PIDs, on one line.
hp_workers() { echo $(h_nginx_workers_of "$1"); }

# hp_reloads DIR WORKER_PID : the reload count the master CLI reports.
hp_reloads() {
	echo "show proc" | h_ns socat stdio "unix-connect:$1/master.sock" | awk -v w="$2" '$1 == w { print $3 }'
}

# pgt_target ID MODE [LINE...] : append a [target postgres] for identity ID
# to $T/sc.conf: the pair in $PG/tls as postgres:postgres MODE, SIGHUP to
# postmaster.pid's first line, verified through STARTTLS; each LINE is
# added as is.
pgt_target() {
	local id=$1 mode=$2
	shift 2
	printf '\n[target postgres]\nidentity = %s\nchain-file = %s\nref-file = %s\n' "$id" "$PG/tls/server.crt" "$PG/tls/server.ref" >>"$T/sc.conf"
	printf 'owner = postgres\ngroup = postgres\nmode = %s\n' "$mode" >>"$T/sc.conf"
	printf 'action = signal HUP %s first-line\n' "$PG/data/postmaster.pid" >>"$T/sc.conf"
	printf '%s\n' "$@" "verify = 127.0.0.1:$PG_PORT starttls=postgres sni=$PG_SNI" >>"$T/sc.conf"
}

# hp_target ID DIR PORT SNI [master] : append a [target haproxy] for
# identity ID to $T/sc.conf: the combined PEM DIR/ID.pem (group haproxy,
# 0640), hot update on the worker's DIR/admin.sock (with "master": on the
# master CLI DIR/master.sock), verified on 127.0.0.1:PORT with SNI.
hp_target() {
	local sock="$2/admin.sock"
	[[ ${5:-} == master ]] && sock="$2/master.sock master"
	printf '\n[target haproxy]\nidentity = %s\ncombined-file = %s/%s.pem\ngroup = haproxy\nmode = 0640\n' "$1" "$2" "$1" >>"$T/sc.conf"
	printf 'action = haproxy %s\nverify = 127.0.0.1:%s sni=%s\nverify-tries = 20\n' "$sock" "$3" "$4" >>"$T/sc.conf"
}
