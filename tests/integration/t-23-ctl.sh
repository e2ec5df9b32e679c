# SPDX-License-Identifier: Apache-2.0
# shortcertctl against a running daemon: wait blocks until an identity has
# a valid certificate (and times out with exit 1 when it cannot get one),
# check-config names file:line, admin-group members may use the admin
# socket and others may not; and the rotation policy: a new key every two
# renewals without anyone asking.
export H_CA_MIN_DURATION=10s H_CA_BACKDATE=2s
ca_up
D=$TNAME-shortcertd
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody" "lifetime = 15s" \
	"renew-jitter = 0%" "rotate-every = 2" "rotate-grace = 5s" "enroll = jwk" \
	"jwk-provisioner = $H_JWK_PROV" "jwk-password-file = $H_JWK_PASSWORD_FILE"
sed -i "s|^log-level = debug|log-level = debug\nadmin-group = 4242|" "$T/sc.conf"
cat >>"$T/sc.conf" <<EOC

[identity nowhere]
names = nowhere.internal.test
ca-url = https://ca.internal.test:1
ca-root = $H_CA_ROOT
chain-file = $T/out/nowhere.crt
ref-file = $T/out/nowhere.ref
allow-users = nobody
EOC
out=$(ctl check-config "$T/sc.conf") || fail "check-config: $out"
note "$out"
printf '[identity x]\nnames = x.test\nrenew-at = 200%%\n' >"$T/bad.conf"
out=$(ctl check-config "$T/bad.conf" 2>&1) && fail "a bad config passed"
[[ $out == *"bad.conf:3: invalid share '200%'"* ]] || fail "unclear: $out"

sc_start "$D" "$T/sc.conf"
out=$(timeout 60 "$BUILD/helper/shortcertctl" -s "$T/run/admin.sock" wait api) || fail "wait failed"
note "wait: $out"
[[ -s $T/out/api.crt ]] || fail "wait returned before the certificate was written"
rc=0
out=$(ctl --timeout 3s wait nowhere 2>&1) || rc=$?
[[ $rc == 1 && $out == *"no valid certificate after 3s"* ]] || fail "wait on a failing identity: rc $rc: $out"
rc=0
ctl wait nosuch >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "wait on an unknown identity: rc $rc"

note "admin-group 4242: a member may use the admin socket, others may not"
[[ $(stat -c '%a %g' "$T/run/admin.sock") == "660 4242" ]] || fail "admin socket mode $(stat -c '%a %g' "$T/run/admin.sock")"
h_ns setpriv --reuid=nobody --regid=nogroup --groups=4242 -- "$BUILD/helper/shortcertctl" \
	-s "$T/run/admin.sock" renew api >/dev/null || fail "an admin-group member was refused"
rc=0
h_ns setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$BUILD/helper/shortcertctl" \
	-s "$T/run/admin.sock" status >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a non-member reached the admin socket"

note "rotate-every = 2: a new key after two renewals, unasked"
H_WAIT_TRIES=800 H_WAIT_SLEEP=0.1 h_wait grep -q "AUDIT rekeyed identity=api" "$H/run/$D.log" ||
	fail "no rotation by policy"
n=$(grep -c "AUDIT renewed identity=api" "$H/run/$D.log")
note "rekeyed after $n renewals with the first key"
((n >= 2)) || fail "rotated after $n renewals"
h_kill "$D"
