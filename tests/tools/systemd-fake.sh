#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# systemd-fake.sh DELIVER_TOOL : the systemd-reload action (sd-bus:
# Manager.ReloadUnit + waiting for JobRemoved) against a FAKE systemd
# (fake-systemd.py) on a private dbus-daemon, because PID 1 here is not
# systemd.  What it proves: the call, its arguments, waiting for our own
# job's JobRemoved (not another job's), the result check, the timeout, and
# a D-Bus error.  Skips (77) without dbus-daemon or python3-dbus.
set -euo pipefail
tool=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v dbus-daemon >/dev/null || { echo "no dbus-daemon"; exit 77; }
/usr/bin/python3 -c 'import dbus, gi' 2>/dev/null || { echo "no python3-dbus"; exit 77; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
cat >"$dir/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
EOC
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile >"$dir/dbus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -S $dir/bus ]] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus
/usr/bin/python3 "$here/fake-systemd.py" "$dir/calls.log" >"$dir/fake.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$dir/fake.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$dir/fake.out" || { cat "$dir/fake.out" "$dir/dbus.log"; exit 1; }

fails=0
expect() { # WANT_RC UNIT TIMEOUT_MS [STDERR PATTERN]
	local rc=0 err
	err=$("$tool" systemd-reload "$2" "$3" 2>&1) || rc=$?
	if [[ $rc != "$1" ]] || { [[ -n ${4:-} ]] && ! grep -q -- "$4" <<<"$err"; }; then
		echo "FAIL: systemd-reload $2: rc $rc (want $1): $err"
		fails=$((fails + 1))
	else
		echo "ok: systemd-reload $2 -> $rc ${err:+($err)}"
	fi
}
expect 0 nginx.service 5000
expect 2 fail.service 5000 "ended with 'failed'"
expect 2 slow.service 500 "did not finish within 500 ms"
expect 2 missing.service 5000 "not found"
expect 2 "bad name" 5000 "invalid systemd unit name"
grep -q "^ReloadUnit nginx.service replace$" "$dir/calls.log" || { echo "FAIL: no ReloadUnit(nginx.service, replace)"; fails=$((fails + 1)); }
grep -q "^Subscribe$" "$dir/calls.log" || { echo "FAIL: no Subscribe"; fails=$((fails + 1)); }
((fails == 0))
