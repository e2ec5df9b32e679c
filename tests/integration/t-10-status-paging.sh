# SPDX-License-Identifier: Apache-2.0
# shortcertctl status with more identities than one frame holds: the daemon
# pages, shortcertctl merges; identities whose CA is unreachable are shown
# with their error, and the exit status says not all are in order.
ca_up
D=$TNAME-shortcertd
N=150
mkdir -p "$T/out"
{
	printf '[daemon]\nstate-dir = %s/state\nsocket = %s/run/shortcert.sock\nadmin-socket = %s/run/admin.sock\n' "$T" "$T" "$T"
	printf '[defaults]\nca-url = https://ca.internal.test:1\nca-root = %s\nallow-users = nobody\n' "$H_CA_ROOT"
	for i in $(seq -w 1 $N); do
		printf '[identity svc-%s]\nnames = svc-%s.internal.test\nchain-file = %s/out/%s.crt\nref-file = %s/out/%s.ref\n' \
			"$i" "$i" "$T" "$i" "$T" "$i"
	done
} >"$T/sc.conf"
sc_start "$D" "$T/sc.conf"
sleep 1
st=$(status_json) || fail "status failed"
n=$(echo "$st" | jq '.identities | length')
u=$(echo "$st" | jq '[.identities[].name] | unique | length')
note "status lists $n identities ($u distinct) of $N, $(echo "$st" | wc -c) bytes of JSON"
[[ $n == "$N" && $u == "$N" ]] || fail "expected $N identities"
[[ $(echo "$st" | jq '.identities_total') == "$N" ]] || fail "identities_total"
echo "$st" | jq -e '.next == null' >/dev/null || fail "paging marker left in the merged status"
rc=0
ctl status >"$T/ctl.txt" || rc=$?
[[ $rc == 3 ]] || fail "exit status $rc with identities lacking certificates"
[[ $(grep -c '^svc-' "$T/ctl.txt") == "$N" ]] || fail "table rows"
grep -m1 "last error" "$T/ctl.txt" | sed 's/^/   /'
h_kill "$D"
