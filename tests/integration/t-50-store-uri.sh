# SPDX-License-Identifier: Apache-2.0
# shortcert:NAME store URIs on the real step-ca: `openssl storeutl` lists the
# key, the leaf and the intermediate that shortcertd holds (FETCH); s_server
# runs with `-key shortcert:api -cert shortcert:api -cert_chain
# shortcert:api` and no file at all, as a uid on the allow list, and
# unmodified s_clients verify the chain to the root over TLS 1.3 and 1.2.  A
# uid not on the allow list gets a clear refusal and nothing to serve; a key
# loaded from the URI stays pinned to its generation across a rotation.
ca_up
D=$TNAME-shortcertd
SS=$TNAME-s_server
PORT=8443
SNI=api.internal.test

sc_config "$T/sc.conf" api "$SNI, 127.0.0.1" "allow-users = nobody" "rotate-grace = 10m"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
sc_openssl_conf "$T/openssl.cnf" "$T/run/shortcert.sock"
# openssl as a service user would run it, with the provider configured.
svc() {
	local user=$1
	shift
	h_ns setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- \
		env OPENSSL_CONF="$T/openssl.cnf" "$@"
}

note "storeutl shortcert:api (as nobody): the key, then leaf and intermediate"
out=$(svc nobody openssl storeutl -noout shortcert:api 2>&1) || fail "storeutl: $out"
mapfile -t lines <<<"$out"
printf '    %s\n' "${lines[@]}"
[[ $out == *"0: Pkey"*"1: Certificate"*"2: Certificate"*"Total found: 3"* ]] ||
	fail "storeutl listed: $out"
svc nobody openssl storeutl -certs shortcert:api 2>/dev/null |
	awk '/BEGIN CERT/,/END CERT/' >"$T/fetched.pem" || fail "storeutl -certs"
[[ $(cat "$T/fetched.pem") == "$(awk '/BEGIN CERT/,/END CERT/' "$T/out/api.crt")" ]] ||
	fail "the fetched chain differs from the chain file"
# The key from the URI is the certificate's key, and only its public half
# can come out.
[[ $(svc nobody openssl pkey -in shortcert:api -pubout 2>&1) == \
   "$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)" ]] || fail "the URI's key is not the certificate's"
svc nobody openssl pkey -in shortcert:api -out "$T/priv.pem" >/dev/null 2>&1 &&
	fail "a private key was written from shortcert:api"

note "s_server -key shortcert:api -cert shortcert:api -cert_chain shortcert:api, no files"
h_bg "$SS" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	env OPENSSL_CONF="$T/openssl.cnf" openssl s_server -www -accept "127.0.0.1:$PORT" \
	-key shortcert:api -cert shortcert:api -cert_chain shortcert:api \
	-no-CAfile -no-CApath -no-CAstore
h_wait h_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" ||
	{ tail -5 "$H/run/$SS.log"; fail "s_server did not start"; }
serial=$(openssl x509 -in "$T/out/api.crt" -noout -serial)
for v in tls1_3 tls1_2; do
	got=$(tls_check "$SNI" "$PORT" "$v") || fail "$v handshake failed"
	[[ $got == "$serial" ]] || fail "$v: served $got, expected $serial"
	note "$v: chain verified to the root, $got"
done
st=$(status_json)
(($(echo "$st" | jq '.identities[0].signatures.ok') >= 2)) || fail "shortcertd did not sign"

note "uid daemon (not on the allow list): refused, clearly, at load time"
uid=$(id -u daemon)
out=$(svc daemon openssl storeutl -noout shortcert:api 2>&1) && fail "storeutl succeeded for daemon: $out"
echo "$out" | contains "refused to give the key reference and certificates for identity 'api': permission denied (uid $uid is not allowed to use identity 'api')" ||
	fail "unclear refusal: $out"
echo "$out" | grep -m1 "refused" | sed 's/^/    storeutl: /'
out=$(svc daemon timeout 10 openssl s_server -accept "127.0.0.1:$((PORT + 1))" \
	-key shortcert:api -cert shortcert:api 2>&1) && fail "s_server started for daemon"
echo "$out" | contains "permission denied (uid $uid is not allowed" || fail "s_server: unclear: $out"
grep -q "AUDIT refused identity=api uid=$uid .*reason=not-on-allow-list request=fetch" "$H/run/$D.log" ||
	fail "no audit line for the refused FETCH"
# An identity that does not exist looks the same to a non-root peer...
out=$(svc daemon openssl storeutl -noout shortcert:nosuch 2>&1) && fail "storeutl of an unknown identity"
echo "$out" | contains "permission denied (uid $uid is not allowed to use identity 'nosuch' (or it does not exist))" ||
	fail "unknown identity, non-root: $out"
# ...and root learns it does not exist.
out=$(h_ns env OPENSSL_CONF="$T/openssl.cnf" openssl storeutl -noout shortcert:nosuch 2>&1) &&
	fail "storeutl of an unknown identity (root)"
echo "$out" | contains "no such identity" || fail "unknown identity, root: $out"
# A malformed URI never reaches the daemon.
out=$(svc nobody openssl storeutl -noout 'shortcert:api?socket=/tmp/x' 2>&1) && fail "malformed URI accepted"
echo "$out" | contains "is not a shortcert URI" || fail "malformed URI: $out"

note "rotation: the running s_server keeps its generation (retired, in grace)"
old_pub=$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)
ctl rotate api >/dev/null
new_key() { [[ $(openssl x509 -in "$T/out/api.crt" -noout -pubkey) != "$old_pub" ]]; }
H_WAIT_TRIES=400 h_wait new_key || fail "no rotation"
got=$(tls_check "$SNI" "$PORT" tls1_3) || fail "the running s_server broke after the rotation"
[[ $got == "$serial" ]] || fail "the running s_server changed certificate: $got"
h_wait grep -q "still signs with a retired key generation" "$H/run/$D.log" ||
	fail "no notice about the retired generation"
# A new load gets the new generation.
[[ $(svc nobody openssl pkey -in shortcert:api -pubout 2>/dev/null) == \
   "$(openssl x509 -in "$T/out/api.crt" -noout -pubkey)" ]] || fail "a new load did not get the new key"
h_kill "$SS"
h_kill "$D"
