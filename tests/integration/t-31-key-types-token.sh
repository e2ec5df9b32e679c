# SPDX-License-Identifier: Apache-2.0
# step-ca's token renewal (/1.0/renew with an x5c token the certificate's
# own key signs: ES384, RS256, EdDSA) for P-384, RSA and Ed25519 keys, of a
# valid and of an expired certificate, through shortcertd's step-ca client
# (tests/tools/stepca-client) against the real step-ca 0.19; and mTLS
# renewal of the same certificates while valid.  t-30 covers ACME, JWK
# enrollment, mTLS renewal and rekey with the daemon itself.
ca_up
sc() { h_ns "$BUILD/tests/tools/stepca-client" "$H_CA_URL" "$H_CA_ROOT" "$@"; }
serial() { openssl x509 -in "$1.crt" -noout -serial; }
pub_of_crt() { openssl x509 -in "$1.crt" -noout -pubkey; }
pub_of_key() { openssl pkey -in "$1.key" -pubout; }
# renewed OLD NEW : NEW.crt is a new certificate for OLD's key, verified to
# the root.
renewed() {
	[[ $(serial "$1") != "$(serial "$2")" ]] || fail "$2: same serial as $1"
	[[ $(pub_of_crt "$2") == "$(pub_of_key "$1")" ]] || fail "$2: not for $1's key"
	awk 'n>=1{print} /END CERTIFICATE/{n++}' "$2.crt" >"$2.int"
	openssl verify -CAfile "$H_CA_ROOT" -untrusted "$2.int" "$2.crt" | contains ': OK' ||
		fail "$2: does not verify to the root"
}

for k in p384 rsa ed25519; do
	out=$(sc sign -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -l 120 -k "$k" "$T/$k" api.internal.test) ||
		fail "$k: JWK sign failed: $out"
	note "$k: $out"
	[[ $(pub_of_crt "$T/$k") == "$(pub_of_key "$T/$k")" ]] || fail "$k: the certificate is not for the key"
	out=$(sc renew-token "$T/$k" "$T/$k-tok") || fail "$k: token renew failed: $out"
	note "$k: $out"
	renewed "$T/$k" "$T/$k-tok"
	out=$(sc renew-mtls "$T/$k" "$T/$k-mtls") || fail "$k: mTLS renew failed: $out"
	renewed "$T/$k" "$T/$k-mtls"
	# expiry without waiting minutes: notAfter 5 s from now (step-ca
	# backdates notBefore by a minute, so the duration passes its minimum)
	sc sign -P "$H_JWK_PROV" -p "$H_JWK_PASSWORD_FILE" -l 5 -k "$k" "$T/$k-exp" api.internal.test >/dev/null ||
		fail "$k: short certificate"
done
for k in p384 rsa ed25519; do
	H_WAIT_TRIES=400 h_wait bash -c "! openssl x509 -in '$T/$k-exp.crt' -noout -checkend 0 >/dev/null" ||
		fail "$k-exp has not expired"
	out=$(sc renew-token "$T/$k-exp" "$T/$k-exp2") || fail "$k: token renew of an expired certificate failed: $out"
	note "$k (expired): $out"
	renewed "$T/$k-exp" "$T/$k-exp2"
done
