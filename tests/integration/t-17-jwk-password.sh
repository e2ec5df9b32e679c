# SPDX-License-Identifier: Apache-2.0
# JWK enrollment with a password file and with a private JWK file; a wrong
# password gives a clear error naming the provisioner, and nothing else
# breaks (the other identities enroll).
ca_up
D=$TNAME-shortcertd
echo "not-the-password" >"$T/wrong-password"
chmod 600 "$T/wrong-password"
sc_config "$T/sc.conf" good "api.internal.test" "allow-users = nobody" "lifetime = 2m" \
	"enroll = jwk" "jwk-provisioner = $H_JWK_PROV" "jwk-password-file = $H_JWK_PASSWORD_FILE"
cat >>"$T/sc.conf" <<EOC

[identity bad]
names = web.internal.test
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
chain-file = $T/out/bad.crt
ref-file = $T/out/bad.ref
allow-users = nobody
enroll = jwk
jwk-provisioner = $H_JWK_PROV
jwk-password-file = $T/wrong-password

[identity keyfile]
names = db.internal.test
ca-url = $H_CA_URL
ca-root = $H_CA_ROOT
chain-file = $T/out/keyfile.crt
ref-file = $T/out/keyfile.ref
allow-users = nobody
enroll = jwk
jwk-provisioner = $H_JWK_PROV
jwk-key-file = $H_JWK_PRIV
EOC
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/good.crt" || fail "no certificate with the password file"
sc_wait_file "$T/out/keyfile.crt" || fail "no certificate with the JWK file"
h_wait grep -q "Identity 'bad': enrollment failed" "$H/run/$D.log" || fail "no failure logged for 'bad'"
line=$(grep -m1 "Identity 'bad': enrollment failed" "$H/run/$D.log")
echo "    ${line#<?>}"
[[ $line == *"JWK provisioner '$H_JWK_PROV'"* && $line == *"wrong password"* ]] ||
	fail "the error does not name the provisioner and the cause"
[[ ! -e $T/out/bad.crt ]] || fail "a certificate for 'bad'"
st=$(status_json)
[[ $(echo "$st" | jq -r '.identities[] | select(.name == "good") | .state') == valid ]] || fail "good"
[[ $(echo "$st" | jq -r '.identities[] | select(.name == "keyfile") | .state') == valid ]] || fail "keyfile"
echo "$st" | jq -r '.identities[] | select(.name == "bad") | .last_error' | contains "wrong password" ||
	fail "status does not show the reason"
grep -rqF "$(cat "$H_JWK_PASSWORD_FILE")" "$H/run" "$T"/*.log 2>/dev/null && fail "the provisioner password is in a log"
note "the password file, the JWK file and a wrong password behave; the password is in no log"
h_kill "$D"
