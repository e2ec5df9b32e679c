#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# systemd-verify.sh SHORTCERTD MAN_PAGE... : `systemd-analyze verify` on
# conf/systemd/*, with ExecStart pointing at the built daemon and the man
# pages the units name (Documentation=man:...) taken from the build, and
# print the unit's `systemd-analyze security` exposure score.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
daemon=$(realpath "$1")
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/units" "$tmp/man"
for page in "$@"; do
	sec=${page##*.}
	mkdir -p "$tmp/man/man$sec"
	cp "$page" "$tmp/man/man$sec/"
done
cp "$here"/conf/systemd/*.service "$here"/conf/systemd/*.socket "$tmp/units/"
sed -i "s|^ExecStart=/usr/sbin/shortcertd|ExecStart=$daemon|" "$tmp/units/shortcertd.service"
grep -q "^ExecStart=$daemon" "$tmp/units/shortcertd.service" || { echo "ExecStart not found" >&2; exit 1; }
# verify prints problems and exits non-zero on errors; warnings (unknown
# keys) only print, so any output fails the test too
out=$(cd "$tmp/units" && MANPATH=$tmp/man systemd-analyze verify ./*.service ./*.socket 2>&1) || { echo "$out" >&2; exit 1; }
if [[ -n $out ]]; then echo "$out" >&2; exit 1; fi
echo "systemd-analyze verify: ok ($(ls "$tmp/units" | tr '\n' ' '))"
systemd-analyze security --offline=yes "$tmp/units/shortcertd.service" 2>&1 | tail -n 1
