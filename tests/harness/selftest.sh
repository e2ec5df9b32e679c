#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/harness/selftest.sh -- proves tests/harness/lib.sh end to end against a
# real step-ca 0.19.0: build, namespace, PKI, ca.json, CA start; /health,
# /provisioners, ACME directory + nonce, JWK one-time token -> /1.0/sign,
# token replay -> 401, mTLS /1.0/renew, encryptedKey decryption, CA restart,
# and that cleanup leaves no process behind.  Prints timings and `HARNESS OK`.
# Exit status 0 on success.  H_KEEP=1 keeps the scratch dir.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

PY=/usr/bin/python3 # Debian's interpreter (has jwcrypto); `python3` on PATH may not
PASS=0
FAIL=0
TIMINGS=()

# ok DESC CMD... : run a check, count and report it (never exits).
ok() {
	local desc=$1
	shift
	if "$@"; then
		PASS=$((PASS + 1))
		echo "  ok   $desc"
	else
		FAIL=$((FAIL + 1))
		echo "  FAIL $desc" >&2
	fi
}

# timed NAME CMD... : run CMD (must succeed) and record its wall time.
timed() {
	local name=$1 t0 t1
	shift
	t0=$(h_now_ms)
	"$@"
	t1=$(h_now_ms)
	TIMINGS+=("$(printf '%-28s %7.2f s' "$name" "$((t1 - t0))e-3")")
}

# lifetime_of PEM_FILE : notAfter - notBefore in seconds.
lifetime_of() {
	local nb na
	nb=$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)
	na=$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)
	echo $(($(date -u -d "$na" +%s) - $(date -u -d "$nb" +%s)))
}

# between X LO HI
between() { (($1 >= $2 && $1 <= $3)); }

on_exit() {
	local rc=$?
	h_cleanup
	if ((rc != 0)); then
		echo "selftest FAILED (rc=$rc); state kept in $H" >&2
	elif [[ ${H_KEEP:-0} != 1 ]]; then
		rm -rf "$H"
	fi
	return "$rc"
}

T_ALL=$(h_now_ms)
h_init "$(mktemp -d /tmp/shortcert-harness.XXXXXX)"
trap on_exit EXIT
echo "harness selftest in $H (cache $H_CACHE)"

# ---------------------------------------------------------------- setup
sum=$(sha256sum "$H_REPO/tests/stepca/main.go" | cut -d' ' -f1)
if [[ -x $H_CACHE/stepca-test-$sum ]]; then kind=warm; else kind=cold; fi
timed "build stepca-test ($kind)" h_build_stepca
timed "namespace start" h_ns_start
timed "pki (openssl)" h_pki
timed "ca.json + mkprov" h_ca_config
timed "CA start (to /health ok)" h_ca_start

ROOT=$H_CA_ROOT
CURL=(h_ns curl -sS --max-time 10 --cacert "$ROOT")
W=$H/tmp
cd "$W"

echo "checks:"
# ---------------------------------------------------------------- health, provisioners, ACME
ok "root notBefore is backdated (>= 23 h ago)" \
	test $(($(date +%s) - $(date -d "$(openssl x509 -in "$ROOT" -noout -startdate | cut -d= -f2)" +%s))) -ge 82800
ok "intermediate has pathlen:0" bash -c "openssl x509 -in '$H/ca/pki/int.crt' -noout -ext basicConstraints | grep -q 'pathlen:0'"
health=$("${CURL[@]}" "$H_CA_URL/health")
ok "GET /health is ok ($health)" test "$health" = '{"status":"ok"}'

"${CURL[@]}" "$H_CA_URL/provisioners" -o provisioners.json
ok "GET /provisioners lists ACME 'acme' and JWK 'jwk'" \
	test "$(jq -c '[.provisioners[] | [.type, .name]] | sort' provisioners.json)" = '[["ACME","acme"],["JWK","jwk"]]'
ok "provisioners carry allowRenewalAfterExpiry" \
	test "$(jq '[.provisioners[].claims.allowRenewalAfterExpiry] | all' provisioners.json)" = true

"${CURL[@]}" "$H_ACME_DIR" -o acme-dir.json
ok "ACME directory has newNonce/newAccount/newOrder under \$H_CA_URL" \
	test "$(jq -r --arg u "$H_CA_URL/acme/acme/" '[.newNonce, .newAccount, .newOrder] | map(startswith($u)) | all' acme-dir.json)" = true
nonce=$("${CURL[@]}" -I "$(jq -r .newNonce acme-dir.json)" | tr -d '\r' | sed -n 's/^replay-nonce: //Ip')
ok "ACME HEAD newNonce returns a Replay-Nonce" test -n "$nonce"

# ---------------------------------------------------------------- encryptedKey / kid
KID=$(jq -r .key.kid "$H/ca/jwk/prov.json")
ok "jwk-priv.json and password file are 0600" \
	test "$(stat -c %a "$H_JWK_PRIV") $(stat -c %a "$H_JWK_PASSWORD_FILE")" = "600 600"
"${CURL[@]}" "$H_CA_URL/provisioners/$KID/encrypted-key" -o enckey.json
ok "CA serves the same encryptedKey for kid" \
	test "$(jq -r .key enckey.json)" = "$(jq -r .encryptedKey "$H/ca/jwk/prov.json")"
# decrypt with the password; check header, thumbprint == kid, and private key == jwk-priv.json
ok "encryptedKey decrypts with the password; kid == RFC 7638 thumbprint" \
	"$PY" - "$H/ca/jwk/prov.json" "$H_JWK_PASSWORD_FILE" "$H_JWK_PRIV" <<-'EOF'
		import json, sys
		from jwcrypto import jwk, jwe
		from jwcrypto.common import base64url_decode
		prov = json.load(open(sys.argv[1]))
		pw = open(sys.argv[2], 'rb').read().rstrip(b'\r\n')
		priv = json.load(open(sys.argv[3]))
		enc = prov['encryptedKey']
		hdr = json.loads(base64url_decode(enc.split('.')[0]))
		assert hdr['alg'] == 'PBES2-HS256+A128KW' and hdr['enc'] == 'A256GCM' and hdr['cty'] == 'jwk+json', hdr
		assert hdr['p2c'] == 100000 and len(base64url_decode(hdr['p2s'])) == 16, hdr
		e = jwe.JWE()
		e.deserialize(enc, key=jwk.JWK.from_password(pw.decode()))
		dec = json.loads(e.payload)
		k = jwk.JWK(**dec)
		assert k.has_private and dec['d'] == priv['d'], 'private key mismatch'
		assert k.thumbprint() == prov['key']['kid'] == dec['kid'] == priv['kid'], 'kid != thumbprint'
		assert prov['key']['alg'] == 'ES256' and prov['key']['use'] == 'sig' and 'd' not in prov['key']
	EOF

# ---------------------------------------------------------------- JWK token -> /1.0/sign
CN=client.internal.test
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key)
openssl req -new -key leaf.key -subj "/CN=$CN" -addext "subjectAltName=DNS:$CN" -out leaf.csr 2>/dev/null
ROOT_SHA=$(openssl x509 -in "$ROOT" -outform DER | sha256sum | cut -d' ' -f1)
# one-time token: ES256, kid = provisioner kid, iss = provisioner name, aud = <CA URL>/1.0/sign
OTT=$("$PY" - "$H_JWK_PRIV" "$H_JWK_PROV" "$H_CA_URL/1.0/sign" "$CN" "$ROOT_SHA" <<-'EOF'
	import json, os, sys, time
	from jwcrypto import jwk, jwt
	kj = open(sys.argv[1]).read()
	key = jwk.JWK.from_json(kj)
	now = int(time.time())
	claims = {'iss': sys.argv[2], 'aud': sys.argv[3], 'sub': sys.argv[4], 'sans': [sys.argv[4]],
	          'sha': sys.argv[5], 'iat': now, 'nbf': now, 'exp': now + 300, 'jti': os.urandom(32).hex()}
	t = jwt.JWT(header={'alg': 'ES256', 'typ': 'JWT', 'kid': json.loads(kj)['kid']}, claims=claims)
	t.make_signed_token(key)
	print(t.serialize())
EOF
)
jq -n --rawfile csr leaf.csr --arg ott "$OTT" '{csr: $csr, ott: $ott, notAfter: "2m"}' >sign-req.json
code=$("${CURL[@]}" -H 'Content-Type: application/json' --data @sign-req.json -o sign.json -w '%{http_code}' "$H_CA_URL/1.0/sign")
ok "POST /1.0/sign with a JWK token -> 201 (got $code)" test "$code" = 201
jq -r .crt sign.json >leaf.crt
jq -j '.certChain | join("")' sign.json >leaf-chain.crt
life=$(lifetime_of leaf.crt)
ok "signed cert lifetime is ~3 min (2m + 1m backdate; got ${life}s)" between "$life" 175 185
ok "signed cert verifies against the root" \
	bash -c "openssl verify -CAfile '$ROOT' -untrusted '$H/ca/pki/int.crt' leaf.crt >/dev/null"
info=$(openssl x509 -in leaf.crt -noout -subject -ext subjectAltName,extendedKeyUsage)
ok "signed cert has CN/SAN $CN and EKU clientAuth" bash -c \
	"grep -q 'CN = $CN\$' <<<\"\$0\" && grep -q 'DNS:$CN\$' <<<\"\$0\" && grep -q 'TLS Web Client Authentication' <<<\"\$0\"" "$info"
code=$("${CURL[@]}" -H 'Content-Type: application/json' --data @sign-req.json -o /dev/null -w '%{http_code}' "$H_CA_URL/1.0/sign")
ok "replayed token -> 401 (got $code)" test "$code" = 401

# ---------------------------------------------------------------- mTLS renew
code=$("${CURL[@]}" --cert leaf-chain.crt --key leaf.key -X POST -o renew.json -w '%{http_code}' "$H_CA_URL/1.0/renew")
ok "mTLS POST /1.0/renew -> 201 (got $code)" test "$code" = 201
jq -r .crt renew.json >renewed.crt
ok "renewed cert: new serial, same key, same ~3 min lifetime" bash -c "
	[[ \$(openssl x509 -in renewed.crt -noout -serial) != \$(openssl x509 -in leaf.crt -noout -serial) ]] &&
	[[ \$(openssl x509 -in renewed.crt -noout -pubkey) == \$(openssl pkey -in leaf.key -pubout) ]] &&
	(( \$(openssl x509 -in renewed.crt -noout -enddate | cut -d= -f2 | date -f - +%s) - \$(openssl x509 -in renewed.crt -noout -startdate | cut -d= -f2 | date -f - +%s) >= 175 ))"

# ---------------------------------------------------------------- restart
timed "CA restart (stop + start)" h_ca_restart
health=$("${CURL[@]}" "$H_CA_URL/health")
ok "GET /health ok after restart" test "$health" = '{"status":"ok"}'

# ---------------------------------------------------------------- stop + cleanup leaves nothing
read -r NSPID _ <"$H/run/ns.pid"
NSID=$(readlink "/proc/$NSPID/ns/net")
# a stray process not started with h_bg (double fork, not our job): cleanup must find it too
(h_ns sleep 300 </dev/null >/dev/null 2>&1 &)
sleep 0.2
PIDS=$(awk '{print $2}' "$H/run/registry")
timed "CA stop" h_ca_stop
timed "cleanup" h_cleanup
left=""
for p in $PIDS; do [[ -d /proc/$p ]] && left+=" $p"; done
for p in /proc/[0-9]*; do
	[[ $(readlink "$p/ns/net" 2>/dev/null) == "$NSID" ]] && left+=" ${p#/proc/}"
done
ok "no process left behind (registry + namespace)${left:+: $left}" test -z "$left"

cd /
echo "timings:"
printf '  %s\n' "${TIMINGS[@]}"
printf '  %-28s %7.2f s\n' "selftest total" "$(($(h_now_ms) - T_ALL))e-3"
echo "selftest: $PASS passed, $FAIL failed"
((FAIL == 0))
echo "HARNESS OK"
