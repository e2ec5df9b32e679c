#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/harness/lib.sh -- shortcert's real-step-ca test harness (a bash library).
#
# Source it from an integration test or scripts/demo, then:
#   h_init "$(mktemp -d)"; trap h_cleanup EXIT
#   h_build_stepca; h_ns_start; h_pki; h_ca_config; h_ca_start
#   h_ns curl --cacert "$H_CA_ROOT" "$H_CA_URL/health"
#
# Everything lives under the scratch dir $H (plus the build cache
# ${SHORTCERT_CACHE:-$HOME/.cache/shortcert}).  Processes run inside a private
# network + mount namespace that only has a loopback interface; /etc/hosts in
# there is $H/hosts.  Nothing outside $H and the cache is modified; every
# process the harness starts is stopped by PID in h_cleanup.
# The code is safe under the caller's `set -euo pipefail`.
# See tests/harness/README.md.

# Guard against double sourcing.
if [[ -n ${_H_LIB_LOADED:-} ]]; then return 0; fi
_H_LIB_LOADED=1

# Repository root (this file is tests/harness/lib.sh).
H_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ---------------------------------------------------------------------------
# small helpers

# _h_die MSG... : print an error on stderr and return 1.
_h_die() { echo "harness: ERROR: $*" >&2; return 1; }

# _h_log MSG... : progress message on stderr (silenced by H_QUIET=1).
_h_log() { [[ ${H_QUIET:-0} == 1 ]] || echo "harness: $*" >&2; }

# h_now_ms : prints a monotonic-enough wall clock in milliseconds.
h_now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# _h_starttime PID : prints the process start time (field 22 of /proc/PID/stat),
# used to make sure a recorded PID still belongs to the process we started.
_h_starttime() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) } # drop "pid (comm) " (comm may contain spaces)
	# shellcheck disable=SC2086 # word splitting is intended here
	set -- $s
	echo "${20}"
}

# _h_alive PID [STARTTIME] : true if PID runs (not a zombie) and, if given,
# still has the recorded start time.
_h_alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $st != Z && -n $st ]] || return 1
	if [[ -n ${2:-} ]]; then
		[[ $(_h_starttime "$1") == "$2" ]] || return 1
	fi
	return 0
}

# _h_stop_pid PID [STARTTIME] [GRACE_TENTHS] : SIGTERM, wait up to GRACE
# (default 100 = 10 s), then SIGKILL.  Reaps it if it is our child.
_h_stop_pid() {
	local pid=$1 st=${2:-} grace=${3:-100} i
	_h_alive "$pid" "$st" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace; i++)); do
		_h_alive "$pid" "$st" || break
		sleep 0.1
	done
	if _h_alive "$pid" "$st"; then
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do _h_alive "$pid" "$st" || break; sleep 0.05; done
	fi
	wait "$pid" 2>/dev/null || true
	return 0
}

# ---------------------------------------------------------------------------
# h_init DIR : make DIR the harness scratch dir $H (created if needed) with
# $H/run (pid files, logs, process registry), $H/ca (CA material), $H/tmp;
# exports H and the H_* variables (H_CA_URL, H_CA_ROOT, H_ACME_DIR,
# H_JWK_PROV, H_JWK_PASSWORD_FILE, H_CACHE).  The cleanup registry is
# $H/run/registry; callers must add `trap h_cleanup EXIT`.
h_init() {
	local dir=${1:-${H:-}}
	[[ -n $dir ]] || _h_die "h_init: no directory given and \$H is unset" || return 1
	mkdir -p "$dir" || return 1
	H=$(cd "$dir" && pwd)
	export H
	mkdir -p "$H/run" "$H/ca" "$H/tmp"
	chmod 755 "$H" # services running as other users (postgres) must traverse it
	: >>"$H/run/registry"
	export H_CACHE=${SHORTCERT_CACHE:-${HOME:-/root}/.cache/shortcert}
	export H_CA_ADDR=${H_CA_ADDR:-127.0.0.1:9443}
	export H_CA_URL="https://ca.internal.test:${H_CA_ADDR##*:}"
	export H_CA_ROOT="$H/ca/pki/root.crt"
	export H_ACME_DIR="$H_CA_URL/acme/acme/directory"
	export H_JWK_PROV=jwk
	export H_JWK_PASSWORD_FILE="$H/ca/jwk/password"
	export H_JWK_PRIV="$H/ca/jwk/jwk-priv.json"
}

# _h_need_init : fail unless h_init ran.
_h_need_init() { [[ -n ${H:-} && -d $H/run ]] || _h_die "call h_init first"; }

# _h_register NAME PID : add PID to the cleanup registry.
_h_register() {
	local st
	st=$(_h_starttime "$2") || st=""
	echo "$1 $2 $st" >>"$H/run/registry"
}

# h_cleanup : stop every process started through the harness, newest first,
# by PID (SIGTERM, then SIGKILL after 10 s), then any process still left inside
# the harness namespace, and the namespace holder last.  Idempotent; keeps the
# caller's exit status.  Use as `trap h_cleanup EXIT`.
h_cleanup() {
	local rc=$? had_e=0 name pid st nsid p
	[[ $- == *e* ]] && had_e=1
	set +e
	if [[ -n ${H:-} && -f $H/run/registry ]]; then
		# everything but the holder, newest first
		while read -r name pid st; do
			[[ $name == ns ]] && continue
			_h_stop_pid "$pid" "$st"
		done < <(tac "$H/run/registry")
		# anything else left inside our private namespace (started with plain h_ns ... &)
		if [[ -f $H/run/ns.pid ]]; then
			read -r pid st <"$H/run/ns.pid"
			if _h_alive "$pid" "$st"; then
				nsid=$(readlink "/proc/$pid/ns/net")
				for p in /proc/[0-9]*; do
					p=${p#/proc/}
					[[ $p == "$pid" ]] && continue
					[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$nsid" ]] || continue
					_h_log "cleanup: stray process $p in the namespace: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
					_h_stop_pid "$p" "" 30
				done
			fi
			_h_stop_pid "$pid" "$st" 20
			rm -f "$H/run/ns.pid"
		fi
		: >"$H/run/registry"
	fi
	((had_e)) && set -e
	return "$rc"
}

# ---------------------------------------------------------------------------
# h_wait CMD... : run CMD (output discarded) until it succeeds; at most
# H_WAIT_TRIES (200) tries, H_WAIT_SLEEP (0.05 s) apart.  Returns 1 on timeout.
h_wait() {
	local i tries=${H_WAIT_TRIES:-200}
	for ((i = 0; i < tries; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep "${H_WAIT_SLEEP:-0.05}"
	done
	echo "harness: timeout waiting for: $*" >&2
	return 1
}

# h_bg NAME CMD... : start CMD in the background INSIDE the harness namespace
# (cwd kept), stdin /dev/null, stdout+stderr appended to $H/run/NAME.log;
# its PID goes to $H/run/NAME.pid and the cleanup registry.  The PID is the
# command itself (nsenter execs it), so `kill` reaches the daemon directly.
h_bg() {
	local name=$1 pid
	shift
	_h_ns_pid >/dev/null || return 1
	echo "=== $(date -u +%FT%TZ) start: $*" >>"$H/run/$name.log"
	nsenter -t "$(_h_ns_pid)" -n -m --wd="$PWD" -- "$@" </dev/null >>"$H/run/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$H/run/$name.pid"
	_h_register "$name" "$pid"
}

# h_bg_host NAME CMD... : like h_bg but in the host namespaces (rarely needed:
# only for things that must not be inside the private network).
h_bg_host() {
	local name=$1 pid
	shift
	_h_need_init || return 1
	echo "=== $(date -u +%FT%TZ) start: $*" >>"$H/run/$name.log"
	"$@" </dev/null >>"$H/run/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$H/run/$name.pid"
	_h_register "$name" "$pid"
}

# h_pid NAME : print the PID of background process NAME (empty if unknown).
h_pid() { [[ -f $H/run/$1.pid ]] && cat "$H/run/$1.pid"; return 0; }

# h_kill NAME [SIGNAL] : without SIGNAL stop process NAME (SIGTERM, SIGKILL
# after 10 s, wait for it) and remove its pid file; with SIGNAL (e.g. HUP)
# only send that signal.
h_kill() {
	local name=$1 sig=${2:-} pid
	[[ -f $H/run/$name.pid ]] || return 0
	pid=$(cat "$H/run/$name.pid")
	if [[ -n $sig ]]; then
		kill -s "$sig" "$pid"
		return
	fi
	_h_stop_pid "$pid" "$(awk -v n="$name" -v p="$pid" '$1 == n && $2 == p { s = $3 } END { print s }' "$H/run/registry")"
	rm -f "$H/run/$name.pid"
}

# ---------------------------------------------------------------------------
# h_build_stepca : build tests/stepca (step-ca 0.19.0 from Debian's sources)
# into $H_CACHE/stepca-test-<sha256 of main.go>, reusing it when present
# (GOCACHE is $H_CACHE/gocache).  Sets and exports H_STEPCA_BIN.  Build log:
# $H/run/go-build.log; on failure prints its tail and returns 1.
h_build_stepca() {
	_h_need_init || return 1
	local src=$H_REPO/tests/stepca sum bin log=$H/run/go-build.log
	command -v go >/dev/null || _h_die "go not found (apt-get install golang-go golang-github-smallstep-certificates-dev)" || return 1
	[[ -d /usr/share/gocode/src/github.com/smallstep/certificates ]] ||
		_h_die "step-ca sources missing (apt-get install golang-github-smallstep-certificates-dev)" || return 1
	sum=$(sha256sum "$src/main.go" | cut -d' ' -f1)
	bin=$H_CACHE/stepca-test-$sum
	if [[ ! -x $bin ]]; then
		mkdir -p "$H_CACHE/gocache"
		_h_log "building stepca-test (step-ca 0.19.0; about 40 s on a cold cache) ..."
		if ! (cd "$src" && env -u GOFLAGS GOCACHE="$H_CACHE/gocache" GO111MODULE=off \
			GOPATH=/usr/share/gocode go build -o "$bin.tmp.$$" .) >"$log" 2>&1; then
			rm -f "$bin.tmp.$$"
			echo "harness: go build of tests/stepca failed; last lines of $log:" >&2
			tail -n 30 "$log" >&2
			return 1
		fi
		mv -f "$bin.tmp.$$" "$bin" # atomic: parallel builders are fine
		# drop binaries of other main.go versions not rebuilt for a week
		find "$H_CACHE" -maxdepth 1 -name 'stepca-test-*' ! -name "stepca-test-$sum" -mtime +7 -delete 2>/dev/null || true
	fi
	export H_STEPCA_BIN=$bin
}

# ---------------------------------------------------------------------------
# h_ns_start : start the namespace holder: `unshare --net --mount
# --propagation private` running `sleep infinity`.  Before anything else runs
# in it: lo up (127.0.0.1 and ::1), $H/hosts bind-mounted over /etc/hosts and
# $H/resolv.conf (nameserver 127.0.0.1, i.e. nothing unless a test runs a
# mock DNS) over /etc/resolv.conf.  Extra /etc/hosts lines: $H_HOSTS_EXTRA.
h_ns_start() {
	_h_need_init || return 1
	local pid i
	if _h_ns_pid >/dev/null 2>&1; then return 0; fi
	command -v unshare >/dev/null && command -v nsenter >/dev/null ||
		_h_die "unshare/nsenter missing (apt-get install util-linux)" || return 1
	command -v ip >/dev/null || [[ -x /usr/bin/python3 ]] ||
		_h_die "need ip (apt-get install iproute2) to bring up lo in the namespace" || return 1
	# ca.internal.test: IPv4 only, the CA listens on 127.0.0.1 (H_CA_ADDR).
	cat >"$H/hosts" <<-EOF
		127.0.0.1	localhost ca.internal.test api.internal.test web.internal.test db.internal.test client.internal.test
		::1	localhost ip6-localhost ip6-loopback api.internal.test web.internal.test db.internal.test client.internal.test
		${H_HOSTS_EXTRA:-}
	EOF
	echo "nameserver 127.0.0.1" >"$H/resolv.conf"
	chmod 644 "$H/hosts" "$H/resolv.conf"
	rm -f "$H/run/ns.ready"
	# The holder script gets $H as $1.  `ip` is preferred; without iproute2
	# lo is brought up with an ioctl from Debian's python3.
	# shellcheck disable=SC2016 # $1 is expanded by the holder shell
	unshare --net --mount --propagation private -- /bin/sh -c '
		set -e
		if command -v ip >/dev/null; then
			ip link set lo up
		else
			/usr/bin/python3 -c "import fcntl, socket, struct
s = socket.socket(); r = struct.pack(\"16sH\", b\"lo\", 0)
f = struct.unpack(\"16sH\", fcntl.ioctl(s, 0x8913, r))[1]
fcntl.ioctl(s, 0x8914, struct.pack(\"16sH\", b\"lo\", f | 1))"
		fi
		echo 0 >/proc/sys/net/ipv6/conf/lo/disable_ipv6 2>/dev/null || true
		if command -v ip >/dev/null && ! ip -6 addr show dev lo | grep -q "::1/128"; then
			ip -6 addr add ::1/128 dev lo || true
		fi
		mount --bind "$1/hosts" /etc/hosts
		mount --bind "$1/resolv.conf" /etc/resolv.conf
		: >"$1/run/ns.ready"
		exec sleep infinity
	' h-ns-holder "$H" </dev/null >>"$H/run/ns.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[[ -f $H/run/ns.ready ]] && break
		_h_alive "$pid" || break
		sleep 0.025
	done
	if [[ ! -f $H/run/ns.ready ]] || ! _h_alive "$pid"; then
		_h_stop_pid "$pid" "" 10
		echo "harness: namespace setup failed; $H/run/ns.log:" >&2
		tail -n 20 "$H/run/ns.log" >&2
		return 1
	fi
	echo "$pid $(_h_starttime "$pid")" >"$H/run/ns.pid"
	_h_register ns "$pid"
}

# _h_ns_pid : print the holder PID (fails if the namespace is not running).
_h_ns_pid() {
	local pid st
	[[ -n ${H:-} && -f $H/run/ns.pid ]] || _h_die "namespace not started (h_ns_start)" || return 1
	read -r pid st <"$H/run/ns.pid"
	_h_alive "$pid" "$st" || _h_die "namespace holder $pid is gone" || return 1
	echo "$pid"
}

# h_ns CMD... : run CMD inside the harness namespace, in the current directory,
# in the foreground; returns CMD's exit status.
h_ns() {
	local pid
	pid=$(_h_ns_pid) || return 1
	nsenter -t "$pid" -n -m --wd="$PWD" -- "$@"
}

# ---------------------------------------------------------------------------
# h_pki : EC P-256 root (10 years) and intermediate (pathlen:0) made with
# openssl only, both with notBefore backdated by one day (openssl ca
# -startdate; OpenSSL 3.0 has no -not_before).  Writes $H/ca/pki/{root,int}.{crt,key};
# root cert = $H_CA_ROOT.
h_pki() {
	_h_need_init || return 1
	local d=$H/ca/pki start rend iend
	mkdir -p "$d/openssl/newcerts"
	: >"$d/openssl/index.txt"
	start=$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)
	rend=$(date -u -d '3650 days' +%Y%m%d%H%M%SZ)
	iend=$(date -u -d '3640 days' +%Y%m%d%H%M%SZ)
	cat >"$d/openssl/ca.cnf" <<-EOF
		[ca]
		default_ca = hca
		[hca]
		dir = $d/openssl
		database = \$dir/index.txt
		new_certs_dir = \$dir/newcerts
		serial = \$dir/serial
		default_md = sha256
		policy = hpolicy
		unique_subject = no
		email_in_dn = no
		copy_extensions = none
		[hpolicy]
		organizationName = optional
		commonName = supplied
		[req]
		distinguished_name = hdn
		prompt = no
		[hdn]
		CN = unused
		[v3_root]
		basicConstraints = critical,CA:TRUE
		keyUsage = critical,keyCertSign,cRLSign
		subjectKeyIdentifier = hash
		[v3_int]
		basicConstraints = critical,CA:TRUE,pathlen:0
		keyUsage = critical,keyCertSign,cRLSign
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid:always
	EOF
	# one && chain: `set -e` would be ignored inside a subshell tested with ||
	(
		cd "$d" && umask 077 &&
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key &&
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out int.key &&
			openssl req -new -config openssl/ca.cnf -key root.key -subj "/O=shortcert test/CN=shortcert Test Root CA" -out root.csr &&
			openssl req -new -config openssl/ca.cnf -key int.key -subj "/O=shortcert test/CN=shortcert Test Intermediate CA" -out int.csr &&
			openssl ca -batch -notext -config openssl/ca.cnf -selfsign -keyfile root.key -in root.csr \
				-rand_serial -startdate "$start" -enddate "$rend" -extensions v3_root -out root.crt &&
			openssl ca -batch -notext -config openssl/ca.cnf -cert root.crt -keyfile root.key -in int.csr \
				-rand_serial -startdate "$start" -enddate "$iend" -extensions v3_int -out int.crt &&
			chmod 644 root.crt int.crt &&
			openssl verify -CAfile root.crt int.crt
	) >"$H/run/pki.log" 2>&1 || {
		echo "harness: h_pki failed; $H/run/pki.log:" >&2
		tail -n 20 "$H/run/pki.log" >&2
		return 1
	}
}

# h_ca_config : writes $H/ca/ca.json for step-ca: address $H_CA_ADDR
# (127.0.0.1:9443), dnsNames localhost/127.0.0.1/ca.internal.test, badgerv2
# DB in $H/ca/db, claims 1m min / 24h max / 5m default, provisioners ACME
# "acme" and JWK "jwk" (both allowRenewalAfterExpiry).  The JWK provisioner
# comes from `stepca-test mkprov` in $H/ca/jwk (random password in
# $H_JWK_PASSWORD_FILE, 0600; private JWK in $H_JWK_PRIV).  Needs
# h_build_stepca and h_pki first.
# Knobs for tests of short-lived certificates: H_CA_MIN_DURATION (1m), the
# smallest lifetime the CA issues; H_CA_BACKDATE (step-ca's default, 1m),
# how far the CA backdates notBefore; H_CA_ALLOW_AFTER_EXPIRY (true),
# whether both provisioners renew expired certificates.
h_ca_config() {
	_h_need_init || return 1
	local c=$H/ca
	[[ -n ${H_STEPCA_BIN:-} ]] || _h_die "h_ca_config: run h_build_stepca first" || return 1
	[[ -f $c/pki/int.key ]] || _h_die "h_ca_config: run h_pki first" || return 1
	mkdir -p "$c/jwk" "$c/db"
	(umask 077 && openssl rand -base64 24 | tr -d '\n' >"$H_JWK_PASSWORD_FILE")
	"$H_STEPCA_BIN" mkprov -name "$H_JWK_PROV" -password-file "$H_JWK_PASSWORD_FILE" -out "$c/jwk" >"$c/jwk/kid" || return 1
	jq -n --arg c "$c" --arg addr "$H_CA_ADDR" --slurpfile jwk "$c/jwk/prov.json" \
		--arg min "${H_CA_MIN_DURATION:-1m}" --arg backdate "${H_CA_BACKDATE:-1m}" \
		--argjson after "${H_CA_ALLOW_AFTER_EXPIRY:-true}" '{
	  root: "\($c)/pki/root.crt", crt: "\($c)/pki/int.crt", key: "\($c)/pki/int.key",
	  address: $addr,
	  dnsNames: ["localhost", "127.0.0.1", "ca.internal.test"],
	  logger: {format: "text"},
	  db: {type: "badgerv2", dataSource: "\($c)/db"},
	  authority: {
	    disableIssuedAtCheck: false,
	    backdate: $backdate,
	    claims: {minTLSCertDuration: $min, maxTLSCertDuration: "24h", defaultTLSCertDuration: "5m"},
	    provisioners: [
	      {type: "ACME", name: "acme", claims: {allowRenewalAfterExpiry: $after}},
	      ($jwk[0] + {claims: {allowRenewalAfterExpiry: $after}})
	    ]
	  },
	  tls: {minVersion: 1.2, maxVersion: 1.3}
	}' >"$c/ca.json"
}

# h_ca_start : start `stepca-test serve` in the namespace (log: $H/run/ca.log,
# pid: $H/run/ca.pid) and wait, at most H_CA_TIMEOUT (15) seconds, until
# GET $H_CA_URL/health says ok.  On failure prints the log tail, returns 1.
h_ca_start() {
	_h_need_init || return 1
	local pid deadline
	[[ -f $H/ca/ca.json ]] || _h_die "h_ca_start: no ca.json (h_ca_config)" || return 1
	[[ -n ${H_STEPCA_BIN:-} ]] || _h_die "h_ca_start: run h_build_stepca first" || return 1
	pid=$(h_pid ca)
	if [[ -n $pid ]] && _h_alive "$pid"; then
		_h_die "h_ca_start: CA already running (pid $pid)" || return 1
	fi
	h_bg ca "$H_STEPCA_BIN" serve -config "$H/ca/ca.json" || return 1
	pid=$(h_pid ca)
	deadline=$(($(h_now_ms) + ${H_CA_TIMEOUT:-15} * 1000))
	while (($(h_now_ms) < deadline)); do
		_h_alive "$pid" || break # died (bad config, port in use, ...)
		if h_ns curl -sf --max-time 2 --cacert "$H_CA_ROOT" "$H_CA_URL/health" 2>/dev/null | grep -q '"ok"'; then
			return 0
		fi
		sleep 0.05
	done
	echo "harness: step-ca did not become healthy; last lines of $H/run/ca.log:" >&2
	tail -n 30 "$H/run/ca.log" >&2
	return 1
}

# h_ca_stop : stop the CA (SIGTERM: clean shutdown that closes the badger DB).
h_ca_stop() { h_kill ca; }

# h_ca_restart : h_ca_stop + h_ca_start.  Note: JWK tokens minted before a
# (re)start are rejected by step-ca ("token issued before the bootstrap").
h_ca_restart() { h_ca_stop && h_ca_start; }

# h_ca_reload : SIGHUP the CA (re-reads ca.json, e.g. changed provisioners).
h_ca_reload() { h_kill ca HUP; }

# ---------------------------------------------------------------------------
# nginx as a TLS peer (delivery tests).  Debian 12's nginx 1.22 (package
# nginx-light) with the real production shape: a root master that loads the
# certificate and the key (reference) and forks 2 workers, which drop to
# nobody:nogroup and make the handshakes.  Everything it writes is under the
# given DIR.  OPENSSL_CONF reaches nginx through its environment and
# `env OPENSSL_CONF;` keeps it for the workers (nginx clears their
# environment otherwise); nginx reads it at start only.

# h_nginx_conf DIR PORT CHAIN KEY [SERVER_NAME] : write DIR/nginx.conf: master
# in the foreground (`daemon off`, so h_bg tracks it), 2 workers as
# nobody:nogroup, one TLS server on 127.0.0.1:PORT (TLS 1.2 and 1.3) with
# `ssl_certificate CHAIN` and `ssl_certificate_key KEY` that answers every
# request with "hello from nginx".  Pid file DIR/nginx.pid, logs
# DIR/error.log (level info: reloads are logged) and DIR/access.log, temp
# paths under DIR/tmp.  Extra lines for the server block: $H_NGINX_EXTRA.
h_nginx_conf() {
	local dir=$1 port=$2 chain=$3 key=$4 name=${5:-localhost}
	[[ $# -ge 4 ]] || _h_die "usage: h_nginx_conf DIR PORT CHAIN KEY [SERVER_NAME]" || return 1
	mkdir -p "$dir/tmp"
	chmod 755 "$dir"
	echo "$port" >"$dir/port"
	cat >"$dir/nginx.conf" <<-EOF
		# written by h_nginx_conf (tests/harness/lib.sh)
		daemon off;
		master_process on;
		worker_processes 2;
		user nobody nogroup;
		pid $dir/nginx.pid;
		error_log $dir/error.log info;
		env OPENSSL_CONF;
		events {
		    worker_connections 512;
		}
		http {
		    access_log $dir/access.log;
		    client_body_temp_path $dir/tmp/body;
		    proxy_temp_path $dir/tmp/proxy;
		    fastcgi_temp_path $dir/tmp/fastcgi;
		    uwsgi_temp_path $dir/tmp/uwsgi;
		    scgi_temp_path $dir/tmp/scgi;
		    server {
		        listen 127.0.0.1:$port ssl;
		        server_name $name;
		        ssl_certificate $chain;
		        ssl_certificate_key $key;
		        ssl_protocols TLSv1.2 TLSv1.3;
		        location / {
		            default_type text/plain;
		            return 200 "hello from nginx\n";
		        }
		        ${H_NGINX_EXTRA:-}
		    }
		}
	EOF
}

# h_nginx_start NAME DIR [OPENSSL_CONF] : `nginx -t` the config (its output
# goes to $H/run/NAME.log), then start `env OPENSSL_CONF=... nginx -e
# DIR/error.log -p DIR -c DIR/nginx.conf` with h_bg NAME (the PID is the
# master) and wait until the pid file names the master, both workers run
# and the port accepts TCP connections.  Without OPENSSL_CONF nginx runs
# with OpenSSL's default configuration.
h_nginx_start() {
	local name=$1 dir=$2 oc=${3:-} port pid
	local -a envv=()
	[[ -f $dir/nginx.conf ]] || _h_die "h_nginx_start: no $dir/nginx.conf (h_nginx_conf)" || return 1
	command -v nginx >/dev/null || _h_die "nginx not found (apt-get install nginx-light)" || return 1
	[[ -n $oc ]] && envv=("OPENSSL_CONF=$oc")
	port=$(cat "$dir/port")
	rm -f "$dir/nginx.pid"
	if ! h_ns env "${envv[@]}" nginx -t -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >>"$H/run/$name.log" 2>&1; then
		echo "harness: nginx -t failed; last lines of $H/run/$name.log:" >&2
		tail -n 15 "$H/run/$name.log" >&2
		return 1
	fi
	h_bg "$name" env "${envv[@]}" nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" || return 1
	pid=$(h_pid "$name")
	if ! h_wait _h_nginx_ready "$pid" "$dir" "$port"; then
		echo "harness: nginx did not come up; last lines of $dir/error.log:" >&2
		tail -n 15 "$dir/error.log" >&2
		return 1
	fi
}

# _h_nginx_ready MASTER_PID DIR PORT : the pid file names the master, 2
# workers run, the port accepts connections.
_h_nginx_ready() {
	_h_alive "$1" || return 1
	[[ $(cat "$2/nginx.pid" 2>/dev/null) == "$1" ]] || return 1
	[[ $(h_nginx_workers_of "$1" | wc -w) -ge 2 ]] || return 1
	h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$3" 2>/dev/null
}

# h_nginx_workers NAME : print the PIDs of the master's children (the
# workers; during a reload, old ones that are still shutting down too).
h_nginx_workers() { h_nginx_workers_of "$(h_pid "$1")"; }

# h_nginx_workers_of MASTER_PID : the same, by the master's PID.
h_nginx_workers_of() {
	local t
	for t in /proc/"$1"/task/*/children; do cat "$t" 2>/dev/null; done
	echo
}

# h_nginx_reload NAME : SIGHUP to the master (what `nginx -s reload` does).
h_nginx_reload() { h_kill "$1" HUP; }

# h_nginx_stop NAME : stop nginx (SIGTERM to the master: fast shutdown).
h_nginx_stop() { h_kill "$1"; }
