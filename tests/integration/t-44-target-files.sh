# SPDX-License-Identifier: Apache-2.0
# Delivery targets without a TLS service (so this also runs against the
# ASan+UBSan daemon): a target's chain, reference and combined PEM get its
# owner, group and mode, the combined PEM is the chain then the reference
# with no blank line (haproxy's runtime API ends a payload at one); actions
# run in order and a failing one escalates to the next; a target whose
# service is not running is "not-running", not a failure; the status shows
# every target with its counters; a restart rewrites nothing that is
# already in place; a bad [target] is refused with file:line.
ca_up
D=$TNAME-shortcertd
O=$T/svc
mkdir -p "$O"
chmod 755 "$O"
sc_config "$T/sc.conf" api "api.internal.test" "allow-users = nobody"
cat >>"$T/sc.conf" <<EOF

[target files]
identity = api
chain-file = $O/api.crt
ref-file = $O/api.ref
combined-file = $O/api.pem
owner = nobody
group = nogroup
mode = 0640
action = exec /usr/bin/false
action = exec /usr/bin/touch $O/second-action-ran

[target down]
identity = api
combined-file = $O/down.pem
action = signal HUP $O/no-such.pid
EOF
"$BUILD/helper/shortcertd" -c "$T/sc.conf" --check-config >/dev/null || fail "the configuration is refused"
sc_start "$D" "$T/sc.conf"
H_WAIT_TRIES=400 h_wait test -e "$O/second-action-ran" || fail "the second action did not run"
for f in api.crt api.ref api.pem; do
	[[ $(stat -c %U:%G:%a "$O/$f") == nobody:nogroup:640 ]] || fail "$f: $(stat -c %U:%G:%a "$O/$f")"
done
cmp -s "$O/api.crt" "$T/out/api.crt" || fail "the target's chain differs from the identity's"
cmp -s "$O/api.ref" "$T/out/api.ref" || fail "the target's reference differs from the identity's"
cmp -s "$O/api.pem" <(cat "$O/api.crt" "$O/api.ref" | grep -v '^$') || fail "the combined PEM is not chain + reference"
contains '^$' <"$O/api.pem" && fail "the combined PEM has a blank line"
[[ $(grep -c "BEGIN CERTIFICATE" "$O/api.pem") -ge 2 ]] || fail "the combined PEM lacks the chain"
tail -1 "$O/api.pem" | contains "^-----END .*KEY REFERENCE-----$" || fail "the reference is not last"
openssl x509 -in "$O/api.pem" -noout -serial >/dev/null || fail "the combined PEM does not start with the leaf"
note "files: $(ls "$O" | tr '\n' ' ')"

st=$(status_json)
files=$(jq -c '.identities[0].targets[] | select(.name == "files")' <<<"$st")
down=$(jq -c '.identities[0].targets[] | select(.name == "down")' <<<"$st")
note "status: $files"
note "status: $down"
[[ $(jq -r .result <<<"$files") == delivered ]] || fail "files: $files"
[[ $(jq -r .escalations <<<"$files") == 1 && $(jq -r .action_failures <<<"$files") == 1 ]] || fail "files counters: $files"
[[ $(jq -r .deliveries_ok <<<"$files") == 1 && $(jq -r .deliveries_failed <<<"$files") == 0 ]] || fail "files counters: $files"
[[ $(jq -r .result <<<"$down") == not-running ]] || fail "down: $down"
[[ $(jq -r .deliveries_failed <<<"$down") == 0 ]] || fail "a stopped service counted as a failure: $down"
ctl status | contains "target files: delivered" || fail "shortcertctl status does not show the targets"

note "restart: files already in place are left alone"
before=$(stat -c %i:%Y "$O/api.pem")
h_kill "$D"
sc_start "$D" "$T/sc.conf"
[[ $(stat -c %i:%Y "$O/api.pem") == "$before" ]] || fail "the combined PEM was rewritten"

note "a bad [target] names file:line"
cp "$T/sc.conf" "$T/bad.conf"
printf '\n[target bad]\nidentity = api\ncombined-file = %s/x.pem\naction = haproxy relative.sock\n' "$O" >>"$T/bad.conf"
line=$(grep -n "relative.sock" "$T/bad.conf" | cut -d: -f1)
out=$("$BUILD/helper/shortcertd" -c "$T/bad.conf" --check-config 2>&1) && fail "a bad target was accepted"
contains "bad.conf:$line: action: the haproxy socket must be an absolute path" <<<"$out" || fail "error: $out"
h_kill "$D"
