#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/tools/stepca-e2e.sh STEPCA_CLIENT [BENCH_N] -- end-to-end proof of
# shortcertd's client for step-ca's own API (helper/stepca.c) against the
# REAL step-ca 0.19 of tests/harness, in its private network namespace.
#
# Proves: JWK enrollment with the password file (encryptedKey fetched from
# GET /1.0/provisioners and decrypted) and with the private JWK file: a
# 2-minute certificate for api.internal.test + 127.0.0.1 whose chain
# verifies, whose lifetime is 120 s + step-ca's 60 s backdate and whose key
# is ours; a wrong password fails with the clear error and breaks nothing;
# mTLS renew (new serial, same key, subject, SANs, lifetime); two
# identities renewed back to back through one handle keep their own
# subjects, and the control: without FRESH_CONNECT/FORBID_REUSE, or with
# TLS session resumption, the second renewal comes back with the first
# identity's certificate (caught by the client's key check); token renew
# of a valid certificate; rekey; a certificate that has EXPIRED: mTLS
# renew fails with -EKEYEXPIRED (refused in the TLS handshake), token
# renew succeeds with allowRenewalAfterExpiry; then a second CA config
# (allowRenewalAfterExpiry off, and 250 more provisioners so the
# provisioner list has three pages): token renew of the expired
# certificate fails with -EACCES, and the password load follows the pages;
# a certificate without the clientAuth EKU (a provisioner template) is
# refused by mTLS in the handshake (-EKEYEXPIRED) and renewed by token; one
# the CA did not issue cannot be renewed by token (-EACCES).
# Finally it measures mTLS vs token renewal, sequential and with THREADS
# (4) threads of their own handle, against the CA's raw /1.0/renew capacity
# with kept-alive clients (plain libcurl: one certificate over mTLS, and
# pre-minted tokens), with the CPU time per renewal of client and CA
# (BENCH_N identities, default 200; 0 skips).
#
# Expiry without waiting minutes: step-ca reads notAfter "5s" relative to
# now and backdates notBefore by a minute, so the duration it checks
# against minTLSCertDuration (1m) is 65 s while the certificate expires
# 5 s after issuance.
#
# Exit 0 = pass, 77 = skipped (not root).  H_KEEP=1 keeps the scratch dir.
set -euo pipefail

CLIENT=$(readlink -f "${1:?usage: stepca-e2e.sh /path/to/stepca-client [BENCH_N]}")
BENCH_N=${2:-200}
THREADS=${THREADS:-4}
# shellcheck source-path=SCRIPTDIR source=../harness/lib.sh
source "$(dirname "$(readlink -f "$0")")/../harness/lib.sh"

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (namespaces)"; exit 77; }

SCRATCH=$(mktemp -d /tmp/shortcert-stepca-e2e.XXXXXX)
finish() {
	local rc=$?
	h_cleanup
	if [[ ${H_KEEP:-0} == 1 ]]; then echo "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
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
sc() { h_ns "$CLIENT" "$H_CA_URL" "$H_CA_ROOT" "$@"; }
# sc_fail OUTFILE ARGS... : run the client, expect it to fail; output in OUTFILE
sc_fail() {
	local out=$1
	shift
	if sc "$@" >"$out" 2>&1; then
		cat "$out"
		fail "expected a failure: $*"
	fi
	cat "$out"
}
epoch() { date -d "$(openssl x509 -in "$1.crt" -noout "-$2" | cut -d= -f2)" +%s; }
lifetime() { echo $(($(epoch "$1" enddate) - $(epoch "$1" startdate))); }
serial() { openssl x509 -in "$1.crt" -noout -serial | cut -d= -f2; }
subject() { openssl x509 -in "$1.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
sans() { openssl x509 -in "$1.crt" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }
verify() { openssl verify -CAfile "$H_CA_ROOT" -untrusted "$1.crt" "$1.crt" >/dev/null || fail "$1: chain does not verify"; }
# same_key CERT_PREFIX KEY_PREFIX : the certificate carries that key
same_key() {
	cmp -s <(openssl x509 -in "$1.crt" -noout -pubkey) <(openssl pkey -in "$2.key" -pubout) ||
		fail "$1.crt does not carry the key $2.key"
}
check_enrolled() {
	local p=$1 life
	verify "$p"
	[[ $(sans "$p") == "DNS:api.internal.test,IPAddress:127.0.0.1" ]] || fail "$p SANs: $(sans "$p")"
	[[ $(subject "$p") == "CN=api.internal.test" ]] || fail "$p subject: $(subject "$p")"
	life=$(lifetime "$p")
	((life >= 179 && life <= 181)) || fail "$p lifetime ${life}s, want 120 s + 60 s backdate"
	same_key "$p" "$p"
	openssl x509 -in "$p.crt" -noout -ext extendedKeyUsage | grep -q 'Client Authentication' ||
		fail "$p has no clientAuth EKU"
	echo "  $p: chain verifies, CN=api.internal.test, SANs $(sans "$p"), lifetime ${life}s, key ours"
}
# check_renewed OLD NEW [KEY] : new serial, same subject/SANs/lifetime, key
check_renewed() {
	local old=$1 new=$2 key=${3:-$1}
	verify "$new"
	[[ $(serial "$old") != "$(serial "$new")" ]] || fail "$new: same serial"
	[[ $(subject "$old") == "$(subject "$new")" ]] || fail "$new subject $(subject "$new")"
	[[ $(sans "$old") == "$(sans "$new")" ]] || fail "$new SANs $(sans "$new")"
	(($(lifetime "$new") - $(lifetime "$old") <= 1 && $(lifetime "$old") - $(lifetime "$new") <= 1)) ||
		fail "$new lifetime $(lifetime "$new") vs $(lifetime "$old")"
	same_key "$new" "$key"
	echo "  $new: serial $(serial "$old") -> $(serial "$new"), $(subject "$new"), lifetime $(lifetime "$new")s, key $key"
}

echo "== JWK enrollment with the password file (GET /1.0/provisioners + PBES2 decrypt)"
sc sign -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -l 120 api api.internal.test 127.0.0.1
check_enrolled api

echo "== JWK enrollment with the private JWK file"
sc sign -P "$H_JWK_PROV" -j "$H_JWK_PRIV" -l 120 api2 api.internal.test 127.0.0.1
check_enrolled api2

echo "== wrong password"
printf 'not-the-password' >wrong.pw
sc_fail out.txt sign -P "$H_JWK_PROV" -p wrong.pw -l 120 bad api.internal.test
grep -q "errno=EKEYREJECTED decrypt: cannot decrypt the key of JWK provisioner 'jwk': wrong password or corrupt encryptedKey" out.txt ||
	fail "not the clear error"
[[ ! -e bad.crt ]] || fail "a certificate appeared"
echo "== unknown provisioner"
sc_fail out.txt sign -P nope -p "$H_JWK_PASSWORD_FILE" x api.internal.test
grep -q "errno=ENOENT provisioners: no JWK provisioner 'nope'" out.txt || fail "unknown provisioner error"
h_ns curl -sf --cacert "$H_CA_ROOT" "$H_CA_URL/health" | grep -q ok || fail "CA unhealthy"
sc sign -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -l 3600 web web.internal.test
echo "  the CA and the right password still work"

echo "== mTLS renew"
sc renew-mtls api api-m
check_renewed api api-m

echo "== two identities renewed back to back through one handle (mTLS)"
sc renew-pair api web pa pw
[[ $(subject pa) == "CN=api.internal.test" && $(subject pw) == "CN=web.internal.test" ]] ||
	fail "subjects mixed up: $(subject pa) / $(subject pw)"
same_key pa api
same_key pw web
echo "  each kept its own subject and key: $(subject pa) / $(subject pw)"
echo "== control: the same without connection hygiene (must go wrong)"
for w in reuse sessions; do
	sc_fail out.txt renew-pair -w "$w" api web ca cw
	grep -q "renew-pair\[2\] errno=EBADMSG renew (mTLS): the CA returned a certificate for another key (subject 'CN = api.internal.test')" out.txt ||
		fail "control -w $w did not show the mix-up"
	echo "  -w $w: web.internal.test's renewal came back as api.internal.test's certificate"
done

echo "== token renew (x5cInsecure) of a valid certificate"
sc renew-token api api-t
check_renewed api api-t

echo "== rekey (mTLS + CSR for a new key)"
sc rekey api api-k
verify api-k
! cmp -s <(openssl pkey -in api.key -pubout) <(openssl pkey -in api-k.key -pubout) || fail "rekey kept the key"
same_key api-k api-k
[[ $(subject api-k) == "$(subject api)" && $(sans api-k) == "$(sans api)" ]] || fail "rekey changed names"
echo "  api-k: new key, $(subject api-k), serial $(serial api-k)"

echo "== expired certificates"
sc sign -P "$H_JWK_PROV" -j "$H_JWK_PRIV" -l 5 exp1 api.internal.test 127.0.0.1 >/dev/null
sc sign -P "$H_JWK_PROV" -j "$H_JWK_PRIV" -l 5 exp2 db.internal.test >/dev/null
na=$(epoch exp2 enddate)
echo "  exp1/exp2 lifetime $(lifetime exp1)s, expire at $(date -u -d @"$na" +%T); waiting"
while (($(date +%s) <= na + 1)); do sleep 0.5; done
sc_fail out.txt renew-mtls exp1 x
grep -q "errno=EKEYEXPIRED renew (mTLS): POST /1.0/renew: the CA refused our client certificate in the TLS handshake" out.txt ||
	fail "mTLS renew of an expired certificate: not the TLS class"
sc renew-token exp1 exp1-t
check_renewed exp1 exp1-t
(($(epoch exp1-t enddate) > $(date +%s))) || fail "exp1-t is not valid now"

echo "== second CA config: allowRenewalAfterExpiry off, 250 more provisioners," \
	"and 'jwk-server' (same key) whose template leaves out the clientAuth EKU"
cp "$H/ca/ca.json" "$H/ca/ca.json.first"
# shellcheck disable=SC2016 # jq program
jq --arg tpl '{"subject": {{ toJson .Subject }}, "sans": {{ toJson .SANs }}, "keyUsage": ["digitalSignature"], "extKeyUsage": ["serverAuth"]}' \
	'.authority.provisioners |= ([range(250) | {type: "ACME", name: "extra-\(.)"}] +
	map(.claims.allowRenewalAfterExpiry = false) +
	[(.[] | select(.type == "JWK")) | .name = "jwk-server" | .options = {x509: {template: $tpl}}])' \
	"$H/ca/ca.json.first" >"$H/ca/ca.json"
h_ca_restart
sc_fail out.txt renew-token exp2 x
grep -q "errno=EACCES renew (token): POST /1.0/renew: HTTP 401: " out.txt || fail "token renew after expiry not refused with -EACCES"
sc_fail out.txt renew-mtls exp2 x
grep -q "errno=EKEYEXPIRED" out.txt || fail "mTLS renew of an expired certificate: not the TLS class"
sc renew-token api api-t2
check_renewed api api-t2
before=$(grep -c 'path="/1.0/provisioners' "$H/run/ca.log" || true)
sc sign -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -l 120 api3 api.internal.test 127.0.0.1
check_enrolled api3
pages=$(($(grep -c 'path="/1.0/provisioners' "$H/run/ca.log" || true) - before))
((pages == 3)) || fail "expected 3 pages of provisioners, the CA served $pages"
echo "  the password load followed $pages pages of GET /1.0/provisioners"

echo "== a certificate without the clientAuth EKU: mTLS refused in TLS, the token method works"
sc sign -P jwk-server -j "$H_JWK_PRIV" -l 600 srv api.internal.test >/dev/null
! openssl x509 -in srv.crt -noout -ext extendedKeyUsage | grep -q 'Client Authentication' || fail "srv has clientAuth"
sc_fail out.txt renew-mtls srv x
grep -q "errno=EKEYEXPIRED renew (mTLS): POST /1.0/renew: the CA refused our client certificate" out.txt ||
	fail "mTLS renew without clientAuth: not the TLS class"
sc renew-token srv srv-t
check_renewed srv srv-t

echo "== gotcha: a certificate the CA did not issue (no provisioner extension), no clientAuth"
P=$H/ca/pki
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ext.key 2>/dev/null
openssl req -new -key ext.key -subj /CN=api.internal.test -out ext.csr
printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:api.internal.test\n' >ext.ext
openssl x509 -req -in ext.csr -CA "$P/int.crt" -CAkey "$P/int.key" -CAcreateserial -CAserial ext.srl -days 1 \
	-extfile ext.ext -out ext.leaf 2>/dev/null
cat ext.leaf "$P/int.crt" >ext.crt
sc_fail out.txt renew-mtls ext x
grep -q "errno=EKEYEXPIRED" out.txt || fail "mTLS renew of ext: not the TLS class"
sc_fail out.txt renew-token ext x
grep -q "errno=EACCES renew (token): POST /1.0/renew: HTTP 401" out.txt || fail "token renew of ext"
echo "  step-ca 0.19 token-renews only what it issued (it looks up the provisioner from the certificate): re-enroll"

cp "$H/ca/ca.json.first" "$H/ca/ca.json"
h_ca_restart

if ((BENCH_N > 0)); then
	echo "== measurements ($BENCH_N identities, $THREADS threads, 2 rounds)"
	sc bench -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -n "$BENCH_N" -T "$THREADS" -C "$(h_pid ca)" | tee bench.txt
	# mean of a field over the rounds of one phase
	mean() { awk -v l="$1" -v f="$2" '$1 == "bench" && $2 == l { for (i = 3; i <= NF; i++) if (index($i, f "=") == 1) { s += substr($i, length(f) + 2); n++ } } END { printf "%.2f", n ? s / n : 0 }' bench.txt; }
	echo "  renewals/s (mean of 2 rounds), p50 ms, client/CA CPU ms per renewal:"
	for l in mtls-seq token-seq raw-keepalive raw-token-seq mtls-par token-par raw-par raw-token-par; do
		printf '    %-14s %8s/s  p50 %6s ms  cpu %s / %s ms\n' "$l" "$(mean "$l" rate_per_s)" "$(mean "$l" p50_ms)" \
			"$(mean "$l" client_cpu_ms_per_op)" "$(mean "$l" ca_cpu_ms_per_op)"
	done
	awk -v t="$(mean token-par rate_per_s)" -v r="$(mean raw-par rate_per_s)" -v k="$(mean raw-token-par rate_per_s)" \
		'BEGIN { printf "  token-par / raw-token-par (the CA'"'"'s own token capacity): %.2f;  token-par / raw-par (kept-alive mTLS of one certificate): %.2f\n", t / k, t / r }'
fi
echo "STEPCA E2E OK"
