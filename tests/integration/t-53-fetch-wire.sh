# SPDX-License-Identifier: Apache-2.0
# FETCH on the wire, against the daemon alone (no provider, so it also runs
# against the ASan+UBSan build): a raw client parses the reply strictly and
# it must be exactly the reference file's DER and the chain file's
# certificates; the allow list and the name probing rule apply as for SIGN;
# a malformed FETCH closes the connection; the admin socket does not answer
# FETCH.
ca_up
D=$TNAME-shortcertd
sock=$T/run/shortcert.sock

sc_config "$T/sc.conf" api "api.internal.test, 127.0.0.1" "allow-users = nobody"
sc_start "$D" "$T/sc.conf"
sc_wait_file "$T/out/api.crt" || fail "no certificate"
raw() { # USER ARGS...
	local user=$1
	shift
	if [[ $user == root ]]; then
		h_ns /usr/bin/python3 "$H_REPO/tests/integration/hostile-client.py" "$@"
	else
		as_user "$user" /usr/bin/python3 "$H_REPO/tests/integration/hostile-client.py" "$@"
	fi
}
sha() { sha256sum | cut -d' ' -f1; }

note "FETCH api as nobody (allowed), versions 1 and 2: the reference and the chain"
want_ref=$(sed -n '/BEGIN SHORTCERT/,/END SHORTCERT/p' "$T/out/api.ref" | grep -v -- ----- | base64 -d | sha)
want_certs=()
n=$(grep -c "BEGIN CERTIFICATE" "$T/out/api.crt")
for i in $(seq 1 "$n"); do
	want_certs+=("$(awk -v n="$i" '/BEGIN CERT/{c++} c==n' "$T/out/api.crt" |
		sed '/END CERT/q' | openssl x509 -outform DER | sha)")
done
((n == 2)) || fail "expected leaf + intermediate in the chain file, got $n"
for v in 1 2; do
	out=$(raw nobody "$sock" fetch api "$v") || fail "version $v: $out"
	[[ $out == "ok $want_ref $n ${want_certs[*]}" ]] || fail "version $v: got '$out'"
done
note "reply matches api.ref and api.crt (leaf first)"

note "the allow list and name probing, as for SIGN"
uid=$(id -u daemon)
out=$(raw daemon "$sock" fetch api) || fail "$out"
[[ $out == "error 5 uid $uid is not allowed to use identity 'api'" ]] || fail "daemon: $out"
out=$(raw daemon "$sock" fetch nosuch) || fail "$out"
[[ $out == "error 5 uid $uid is not allowed to use identity 'nosuch' (or it does not exist)" ]] ||
	fail "daemon, unknown name: $out"
out=$(raw root "$sock" fetch nosuch) || fail "$out"
[[ $out == "error 4 no identity 'nosuch'" ]] || fail "root, unknown name: $out"
# root is not on the allow list either: no exception for it.
out=$(raw root "$sock" fetch api) || fail "$out"
[[ $out == "error 5 uid 0 is not allowed to use identity 'api'" ]] || fail "root: $out"
grep -q "AUDIT refused identity=api uid=$uid .*reason=not-on-allow-list request=fetch" "$H/run/$D.log" ||
	fail "no audit line"

note "malformed FETCH frames close the connection; the daemon serves on"
for c in fetch-trailing fetch-badname; do
	out=$(raw nobody "$sock" "$c") || fail "$out"
	note "$out"
done
out=$(raw root "$T/run/admin.sock" fetch api) || fail "$out"
[[ $out == "error 3 unknown request type 0x0005" ]] || fail "admin socket: $out"
out=$(raw nobody "$sock" fetch api) || fail "after the malformed frames: $out"
[[ $out == "ok $want_ref"* ]] || fail "after the malformed frames: $out"
h_kill "$D"
