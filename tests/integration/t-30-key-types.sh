# SPDX-License-Identifier: Apache-2.0
# Every key type on the real step-ca: ec-p256, ec-p384, rsa-2048, rsa-3072
# and ed25519 server identities enroll over ACME; an unmodified s_server
# (as nobody, the reference as its key) serves TLS 1.3 and 1.2 that an
# unmodified s_client verifies against the root, with the signature type
# the key calls for (RSA: PSS in 1.3, PKCS#1 and PSS in 1.2 by -sigalgs);
# a static RSA key exchange fails with the provider's clear error.  RSA
# and Ed25519 client identities enroll with the JWK provisioner
# (/1.0/sign); P-384, RSA and Ed25519 identities renew over mTLS
# (/1.0/renew) and rotate (/1.0/rekey).  Purpose: a client identity's key
# refuses server-context inputs and a server identity's key client-context
# ones, for every kind; a scheme that does not fit the key is refused.
# shortcert:NAME store URIs hand out P-384, RSA and Ed25519 keys too.
# A changed key-type gets a new key of that type.  And allowed-key-types: a
# key-type outside the policy is a config error.
types=(ec-p256 ec-p384 rsa-2048 rsa-3072 ed25519)
hosts=""
for t in "${types[@]}"; do hosts+=" $t.internal.test"; done
export H_HOSTS_EXTRA="127.0.0.1 $hosts cli-rsa.internal.test cli-ed.internal.test"
ca_up
D=$TNAME-shortcertd

note "allowed-key-types: a key-type outside the policy names file:line"
cat >"$T/bad.conf" <<EOC
[defaults]
allowed-key-types = ec-p256 ed25519
[identity x]
names = x.test
key-type = rsa-3072
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
chain-file = $T/x.crt
ref-file = $T/x.ref
allow-users = nobody
EOC
out=$("$BUILD/helper/shortcertd" -c "$T/bad.conf" --check-config 2>&1) && fail "a key-type outside the policy passed"
[[ $out == *"bad.conf:5: [identity x]: key-type rsa-3072 is not in allowed-key-types"* ]] || fail "unclear: $out"
sed -i 's/^key-type = rsa-3072$/key-type = ed25519/' "$T/bad.conf"
out=$("$BUILD/helper/shortcertd" -c "$T/bad.conf" --check-config 2>&1) || fail "ed25519 inside the policy refused: $out"
printf '[identity x]\nnames = x.test\nkey-type = rsa-1024\n' >"$T/bad.conf"
out=$("$BUILD/helper/shortcertd" -c "$T/bad.conf" --check-config 2>&1) && fail "rsa-1024 passed"
[[ $out == *"bad.conf:3: unsupported key-type 'rsa-1024': RSA keys shorter than 2048 bits are never allowed"* ]] ||
	fail "unclear: $out"

mkdir -p "$T/state" "$T/out"
chmod 755 "$T" "$T/out"
{
	printf '[daemon]\nstate-dir = %s/state\nsocket = %s/run/shortcert.sock\n' "$T" "$T"
	printf 'admin-socket = %s/run/admin.sock\nlog-level = debug\n\n' "$T"
	printf '[defaults]\nca-url = %s\nca-root = %s\nlifetime = 10m\nallow-users = nobody\n' "$H_CA_URL" "$H_CA_ROOT"
	printf 'allowed-key-types = ec-p256 ec-p384 rsa-2048 rsa-3072 ed25519\n'
	for t in "${types[@]}"; do
		printf '\n[identity srv-%s]\nnames = %s.internal.test\nkey-type = %s\n' "$t" "$t" "$t"
		printf 'chain-file = %s/out/srv-%s.crt\nref-file = %s/out/srv-%s.ref\n' "$T" "$t" "$T" "$t"
	done
	for c in rsa:rsa-3072 ed:ed25519; do
		printf '\n[identity cli-%s]\nnames = cli-%s.internal.test\nrole = client\nkey-type = %s\n' \
			"${c%%:*}" "${c%%:*}" "${c#*:}"
		printf 'enroll = jwk\njwk-provisioner = %s\njwk-password-file = %s\n' "$H_JWK_PROV" "$H_JWK_PASSWORD_FILE"
		printf 'chain-file = %s/out/cli-%s.crt\nref-file = %s/out/cli-%s.ref\n' "$T" "${c%%:*}" "$T" "${c%%:*}"
	done
} >"$T/sc.conf"
sc_start "$D" "$T/sc.conf"
for id in "${types[@]/#/srv-}" cli-rsa cli-ed; do
	sc_wait_file "$T/out/$id.crt" || fail "no certificate for $id"
	sc_wait_file "$T/out/$id.ref" || fail "no reference for $id"
done
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"

# key_text ID : what ID's held key is, from its public half only (never
# print -text of a private key: its bytes would land in the test log).
key_text() {
	openssl pkey -in "$T/state/identities/$1/current/key.pem" -noout -text_pub |
		grep -E 'Public-Key|ASN1 OID' | tr '\n' ' '
}
# check_chain ID : the chain verifies to the root and carries the held key.
check_chain() {
	local id=$1
	awk 'n>=1{print} /END CERTIFICATE/{n++}' "$T/out/$id.crt" >"$T/$id-int.pem"
	openssl verify -CAfile "$H_CA_ROOT" -untrusted "$T/$id-int.pem" "$T/out/$id.crt" | contains ': OK' ||
		fail "$id: the chain does not verify to the root"
	[[ $(openssl pkey -in "$T/state/identities/$id/current/key.pem" -pubout) == \
		"$(openssl x509 -in "$T/out/$id.crt" -noout -pubkey)" ]] || fail "$id: certificate is not for the held key"
}

# sclient PORT HOST ARGS... : an unmodified s_client that must verify the
# chain to the root and the host name; prints its output.
sclient() {
	local port=$1 host=$2 out
	shift 2
	out=$(h_ns timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$host" \
		-verify_return_error -verify_hostname "$host" -CAfile "$H_CA_ROOT" \
		-no-CApath -no-CAstore "$@" </dev/null 2>&1) || { echo "$out" | tail -15 >&2; return 1; }
	grep -q "Verify return code: 0 (ok)" <<<"$out" || { echo "$out" | tail -15 >&2; return 1; }
	echo "$out"
}

# expect_sig PORT HOST TYPE VERSION ARGS... : a verified handshake of
# VERSION whose server signature type is TYPE (s_client's "Peer signature
# type"); prints "type/digest".
expect_sig() {
	local port=$1 host=$2 want=$3 ver=$4 out got dg
	shift 4
	out=$(sclient "$port" "$host" "-$ver" "$@") || fail "$host: $ver $* handshake failed"
	grep -q "Protocol *: *$([[ $ver == tls1_3 ]] && echo TLSv1.3 || echo TLSv1.2)" <<<"$out" ||
		grep -q "New, $([[ $ver == tls1_3 ]] && echo TLSv1.3 || echo TLSv1.2)" <<<"$out" ||
		fail "$host: not $ver"
	got=$(sed -n 's/^Peer signature type: //p' <<<"$out")
	dg=$(sed -n 's/^Peer signing digest: //p' <<<"$out")
	[[ $got == "$want" ]] || fail "$host $ver $*: signature type '$got', expected '$want'"
	echo "$got/${dg:-none}"
}

port=8530
for t in "${types[@]}"; do
	id=srv-$t host=$t.internal.test
	note "$id: key, chain, s_server through the provider"
	check_chain "$id"
	[[ $(status_json | jq -r --arg n "$id" '.identities[] | select(.name == $n) | .key_type') == "$t" ]] ||
		fail "$id: status does not say key_type $t"
	kt=$(key_text "$id")
	case $t in
	ec-p256) [[ $kt == *"(256 bit)"* && $kt == *"prime256v1"* ]] ;;
	ec-p384) [[ $kt == *"(384 bit)"* && $kt == *"secp384r1"* ]] ;;
	rsa-2048) [[ $kt == *"Public-Key: (2048 bit)"* ]] ;;
	rsa-3072) [[ $kt == *"Public-Key: (3072 bit)"* ]] ;;
	ed25519) [[ $kt == *"ED25519 Public-Key"* ]] ;;
	esac || fail "$id holds the wrong kind of key: $kt"
	# s_server's own cipher list (no -cipher): static RSA stays offered, so
	# a client that asks for it shows what the provider says.
	h_bg "$TNAME-s_server-$t" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$port" \
		-cert "$T/out/$id.crt" -cert_chain "$T/out/$id.crt" -key "$T/out/$id.ref" \
		-no-CAfile -no-CApath -no-CAstore
	h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "s_server for $id did not start"
	before=$(status_json | jq --arg n "$id" '.identities[] | select(.name == $n) | .signatures.ok')
	n=2
	case $t in
	ec-*)
		r13=$(expect_sig "$port" "$host" ECDSA tls1_3)
		r12=$(expect_sig "$port" "$host" ECDSA tls1_2)
		[[ $t != ec-p384 || $r13 == ECDSA/SHA384 ]] || fail "$id: TLS 1.3 signed with $r13"
		;;
	rsa-*)
		r13=$(expect_sig "$port" "$host" RSA-PSS tls1_3)
		r12=$(expect_sig "$port" "$host" RSA tls1_2 -sigalgs RSA+SHA256:RSA+SHA384)
		r12p=$(expect_sig "$port" "$host" RSA-PSS tls1_2 -sigalgs rsa_pss_rsae_sha384)
		[[ $r12p == RSA-PSS/SHA384 ]] || fail "$id: TLS 1.2 PSS signed with $r12p"
		note "$id: TLS 1.2 PSS: $r12p"
		# finite-field DHE: only RSA keys sign DHE params (tls-purpose)
		r12d=$(expect_sig "$port" "$host" RSA-PSS tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256)
		sclient "$port" "$host" -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256 |
			contains "Server Temp Key: DH," || fail "$id: the DHE handshake used no DH key"
		note "$id: TLS 1.2 DHE-RSA: $r12d"
		n=5
		note "$id: a static RSA key exchange (AES128-GCM-SHA256, TLS 1.2) fails clearly"
		if h_ns timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$host" \
			-tls1_2 -cipher AES128-GCM-SHA256 -CAfile "$H_CA_ROOT" -verify_return_error \
			</dev/null >"$T/static-$t.out" 2>&1; then
			fail "$id: a static RSA key exchange succeeded"
		fi
		h_wait grep -q "RSA decryption (static RSA key exchange) is not offered; configure ECDHE-only ciphers" \
			"$H/run/$TNAME-s_server-$t.log" || fail "$id: s_server did not log the provider's clear error"
		note "    client: $(grep -o 'alert [a-z]*[ a-z]*' "$T/static-$t.out" | head -1 || true)"
		note "    server: $(grep -m1 -o 'shortcert: RSA decryption[^:]*' "$H/run/$TNAME-s_server-$t.log")"
		;;
	ed25519)
		r13=$(expect_sig "$port" "$host" ed25519 tls1_3)
		r12=$(expect_sig "$port" "$host" ed25519 tls1_2)
		;;
	esac
	note "$id: TLS 1.3 $r13, TLS 1.2 $r12 (verified against the root)"
	after=$(status_json | jq --arg n "$id" '.identities[] | select(.name == $n) | .signatures.ok')
	((after - before == n)) || fail "$id: shortcertd signed $((after - before)) times for $n handshakes"
	h_kill "$TNAME-s_server-$t"
	port=$((port + 1))
done

note "shortcert:NAME store URIs for every kind: storeutl, and s_server with no files"
for t in ec-p384 rsa-3072 ed25519; do
	id=srv-$t
	out=$(as_user nobody env OPENSSL_CONF="$T/openssl.cnf" openssl storeutl -noout "shortcert:$id" 2>&1) ||
		fail "storeutl shortcert:$id: $out"
	[[ $out == *"0: Pkey"*"1: Certificate"*"Total found: 3"* ]] || fail "storeutl shortcert:$id listed: $out"
	[[ $(as_user nobody env OPENSSL_CONF="$T/openssl.cnf" openssl pkey -in "shortcert:$id" -pubout 2>&1) == \
		"$(openssl x509 -in "$T/out/$id.crt" -noout -pubkey)" ]] || fail "shortcert:$id: not the certificate's key"
	h_bg "$TNAME-s_server-uri-$t" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "$port" \
		-key "shortcert:$id" -cert "shortcert:$id" -cert_chain "shortcert:$id" \
		-cipher ECDHE+AESGCM:ECDHE+CHACHA20 -no-CAfile -no-CApath -no-CAstore
	h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "s_server shortcert:$id did not start"
	case $t in
	ec-*) want=ECDSA ;;
	rsa-*) want=RSA-PSS ;;
	*) want=ed25519 ;;
	esac
	r13=$(expect_sig "$port" "$t.internal.test" "$want" tls1_3)
	r12=$(expect_sig "$port" "$t.internal.test" "$want" tls1_2)
	note "shortcert:$id: TLS 1.3 $r13, TLS 1.2 $r12"
	h_kill "$TNAME-s_server-uri-$t"
	port=$((port + 1))
done

# sign ID KIND : sc-sign as nobody with ID's reference.
sign() { as_user nobody env SC_SIGN_SCHEME="${SCHEME:-}" "$BUILD/tests/integration/sc-sign" \
	"$T/run/shortcert.sock" "$T/out/$1.ref" "$2"; }
# signs ID KIND / refuses ID KIND CODE
signs() { local out; out=$(sign "$1" "$2") || fail "$1 did not sign $2${SCHEME:+ ($SCHEME)}: $out"; note "$1 $2${SCHEME:+ ($SCHEME)}: $out"; }
refuses() {
	local out rc=0
	out=$(sign "$1" "$2") || rc=$?
	[[ $rc == 3 && $out == *"code $3 "* ]] || fail "$1 $2${SCHEME:+ ($SCHEME)}: not refused with code $3 (rc $rc): $out"
	note "$1 $2${SCHEME:+ ($SCHEME)}: $out"
}

note "purpose: server keys sign only server inputs, client keys only client inputs"
for id in srv-ec-p384 srv-rsa-2048 srv-rsa-3072 srv-ed25519; do
	signs "$id" tls13-server-cv
	signs "$id" tls12-ske
	refuses "$id" tls13-client-cv 7
done
for id in cli-rsa cli-ed; do
	check_chain "$id"
	signs "$id" tls13-client-cv
	refuses "$id" tls13-server-cv 7
	refuses "$id" tls12-ske 7
done
note "schemes: every RSA scheme signs; a scheme of another kind is refused"
for s in rsa-pkcs1-sha256 rsa-pkcs1-sha384 rsa-pkcs1-sha512 rsa-pss-sha384 rsa-pss-sha512; do
	SCHEME=$s signs srv-rsa-2048 tls13-server-cv
done
SCHEME=ecdsa-sha384 signs srv-ec-p384 tls13-server-cv
SCHEME=ecdsa-sha256 refuses srv-rsa-3072 tls13-server-cv 8
SCHEME=ed25519 refuses srv-rsa-3072 tls13-server-cv 8
SCHEME=rsa-pss-sha256 refuses srv-ed25519 tls13-server-cv 8
SCHEME=rsa-pkcs1-sha256 refuses srv-ec-p256 tls13-server-cv 8
SCHEME=ecdsa-sha256 refuses cli-ed tls13-client-cv 8

note "renewal (/1.0/renew over mTLS with the identity's own key) for every kind"
for id in srv-ec-p384 srv-rsa-3072 srv-ed25519 cli-ed; do
	serial=$(openssl x509 -in "$T/out/$id.crt" -noout -serial)
	ctl renew "$id" >/dev/null || fail "renew $id"
	H_WAIT_TRIES=400 h_wait grep -q "AUDIT renewed identity=$id .*method=renew-mtls" "$H/run/$D.log" ||
		fail "$id was not renewed over mTLS"
	h_wait bash -c "[[ \$(openssl x509 -in '$T/out/$id.crt' -noout -serial) != '$serial' ]]" ||
		fail "$id: the renewed certificate was not written"
	check_chain "$id"
	note "$id: renewed over mTLS, $(openssl x509 -in "$T/out/$id.crt" -noout -serial)"
done

note "rotation (/1.0/rekey, mTLS with the old key) keeps the key type"
for id in cli-rsa cli-ed srv-rsa-2048; do
	gen=$(readlink "$T/state/identities/$id/current")
	ctl rotate "$id" >/dev/null || fail "rotate $id"
	H_WAIT_TRIES=400 h_wait grep -q "AUDIT rekeyed identity=$id .*method=rekey" "$H/run/$D.log" ||
		fail "$id was not rekeyed through /1.0/rekey"
	[[ $(readlink "$T/state/identities/$id/current") != "$gen" ]] || fail "$id: still $gen"
	h_wait bash -c "[[ \$(openssl pkey -in '$T/state/identities/$id/current/key.pem' -pubout) == \
		\$(openssl x509 -in '$T/out/$id.crt' -noout -pubkey) ]]" || fail "$id: served chain is not for the new key"
	check_chain "$id"
	note "$id: rekeyed, $(key_text "$id")"
done
[[ $(key_text cli-ed) == *"ED25519 Public-Key"* ]] || fail "cli-ed changed its key type"
[[ $(key_text cli-rsa) == *"Public-Key: (3072 bit)"* ]] || fail "cli-rsa changed its key type"
signs cli-rsa tls13-client-cv
signs cli-ed tls13-client-cv

note "a new key-type: at the next start a key of that type is enrolled; the old one signs until its grace ends"
cp "$T/out/srv-ec-p256.ref" "$T/out/old-p256.ref"
chmod 644 "$T/out/old-p256.ref"
h_kill "$D"
sed -i '/^\[identity srv-ec-p256\]/,/^\[/ s/^key-type = ec-p256$/key-type = ed25519/' "$T/sc.conf"
grep -A3 '^\[identity srv-ec-p256\]' "$T/sc.conf" | contains "key-type = ed25519" || fail "config not changed"
sc_start "$D" "$T/sc.conf"
grep -q "Identity 'srv-ec-p256': the stored key is not of the configured key-type" "$H/run/$D.log" ||
	fail "the key type change was not noticed"
H_WAIT_TRIES=400 h_wait grep -q "AUDIT rekeyed identity=srv-ec-p256 .*method=acme" "$H/run/$D.log" ||
	fail "srv-ec-p256 got no key of the new type"
h_wait bash -c "openssl pkey -in '$T/state/identities/srv-ec-p256/current/key.pem' -noout -text_pub | grep -q ED25519" ||
	fail "srv-ec-p256 does not hold an Ed25519 key now: $(key_text srv-ec-p256)"
h_wait bash -c "[[ \$(openssl pkey -in '$T/state/identities/srv-ec-p256/current/key.pem' -pubout) == \
	\$(openssl x509 -in '$T/out/srv-ec-p256.crt' -noout -pubkey) ]]" || fail "srv-ec-p256: chain not for the new key"
check_chain srv-ec-p256
st=$(status_json | jq -c '.identities[] | select(.name == "srv-ec-p256") | [.key_type, .configured_key_type]')
[[ $st == '["ed25519",null]' ]] || fail "srv-ec-p256 status after the change: $st"
signs srv-ec-p256 tls13-server-cv
out=$(sign old-p256 tls13-server-cv) || fail "the retired P-256 generation no longer signs: $out"
[[ $out == *"ecdsa-sha256"*"notice: retired key generation"* ]] || fail "old generation: $out"
note "old-p256 (retired, in its grace): $out"
h_kill "$D"
