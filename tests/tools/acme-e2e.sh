#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/tools/acme-e2e.sh ACME_ISSUE [COUNT] -- end-to-end proof of
# shortcertd's ACME client and http-01 responder against the REAL step-ca
# 0.19 (tests/harness) and, when installed, Pebble with 30 % of its nonces
# rejected (badNonce retry).  Everything runs in the harness's private
# network namespace (port 80 is free there); every process is stopped by
# PID on exit.
#
# Checks: chain verifies against the harness root, SANs are exactly
# DNS:api.internal.test + IP:127.0.0.1, CN = the DNS name, the lifetime is
# the requested 10 minutes (+ step-ca's 1 min backdate), the certificate's
# key is the requested key; then COUNT (20) issuances and their median;
# then Pebble (required) rejecting 30 % of nonces: every issuance succeeds
# and badNonce retries happened.
# Exit 0 = pass, 77 = skipped (not root, or no Go / step-ca sources).
# H_KEEP=1 keeps the scratch directory.
set -euo pipefail

ISSUE=$(readlink -f "${1:?usage: acme-e2e.sh /path/to/acme-issue [COUNT]}")
COUNT=${2:-20}
# shellcheck source-path=SCRIPTDIR source=../harness/lib.sh
source "$(dirname "$(readlink -f "$0")")/../harness/lib.sh"

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (namespaces, port 80)"; exit 77; }
command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/smallstep/certificates ]] ||
	{ echo "SKIP: no Go or step-ca sources"; exit 77; }

SCRATCH=$(mktemp -d /tmp/shortcert-acme-e2e.XXXXXX)
finish() {
	local rc=$?
	h_cleanup
	[[ ${H_KEEP:-0} == 1 ]] && echo "kept $SCRATCH" || rm -rf "$SCRATCH"
	return $rc
}
h_init "$SCRATCH"
trap finish EXIT
H_QUIET=1 h_build_stepca
h_ns_start
h_pki
h_ca_config
h_ca_start
cd "$H/tmp"

fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== step-ca: one issuance, api.internal.test + 127.0.0.1, 10 min"
h_ns "$ISSUE" -t 600 "$H_ACME_DIR" "$H_CA_ROOT" leaf api.internal.test 127.0.0.1
openssl verify -CAfile "$H_CA_ROOT" -untrusted leaf.crt leaf.crt || fail "chain does not verify"
san=$(openssl x509 -in leaf.crt -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
[[ $san == "DNS:api.internal.test,IPAddress:127.0.0.1" ]] || fail "SANs: $san"
openssl x509 -in leaf.crt -noout -subject | grep -q 'CN = api.internal.test' || fail "CN"
nb=$(date -d "$(openssl x509 -in leaf.crt -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in leaf.crt -noout -enddate | cut -d= -f2)" +%s)
life=$((na - nb))
((life >= 600 && life <= 660)) || fail "lifetime ${life}s, want 600..660"
echo "lifetime: ${life}s (600 s asked + step-ca's backdate)"
cmp -s <(openssl x509 -in leaf.crt -noout -pubkey) <(openssl pkey -in leaf.key -pubout) ||
	fail "the certificate is not for the requested key"
echo "key matches, SANs: $san"

echo "== step-ca: $COUNT issuances"
h_ns "$ISSUE" -t 600 -n "$COUNT" "$H_ACME_DIR" "$H_CA_ROOT" many api.internal.test 127.0.0.1 | tail -n 1

command -v pebble >/dev/null || fail "pebble is not installed (scripts/install-deps test)"
{
	echo "== Pebble, PEBBLE_WFE_NONCEREJECT=30: 10 issuances"
	P=$H/pebble
	mkdir -p "$P"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/tls.key" \
		-days 2 -subj "/CN=localhost" -addext subjectAltName=IP:127.0.0.1 -out "$P/tls.crt" 2>/dev/null
	printf '{"pebble":{"listenAddress":"127.0.0.1:14000","managementListenAddress":"127.0.0.1:15000","certificate":"%s","privateKey":"%s","httpPort":80,"tlsPort":443}}\n' \
		"$P/tls.crt" "$P/tls.key" >"$P/config.json"
	h_bg pebble env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=30 pebble -config "$P/config.json" -strict=false
	h_wait h_ns curl -sf --cacert "$P/tls.crt" https://127.0.0.1:14000/dir
	h_ns "$ISSUE" -v -t 600 -n 10 https://127.0.0.1:14000/dir "$P/tls.crt" peb api.internal.test 127.0.0.1 \
		2>"$P/client.log" | tail -n 1
	h_ns curl -s --cacert "$P/tls.crt" https://127.0.0.1:15000/roots/0 >"$P/root.pem"
	openssl verify -CAfile "$P/root.pem" -untrusted peb.crt peb.crt || fail "pebble chain"
	retried=$(grep -c 'badNonce, retrying' "$P/client.log" || true)
	echo "badNonce replies retried: $retried"
	((retried > 0)) || fail "Pebble rejected no nonce, so the badNonce retry was not exercised"
}
echo "ACME E2E OK"
