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
