#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile-client.py SOCKET CASE : misbehave on shortcertd's signing socket.
Prints one line with what the daemon did and exits 0 if that is what a
robust daemon must do:
  oversize   a 70000-byte message        -> the connection is closed
  garbage    a frame with a bad magic    -> the connection is closed
  truncated  a header claiming 100 bytes of body, with 10 -> closed
  flood N    N connections at once       -> at most the per-uid limit stay
                                            open, the rest are closed
  hoard N S  hold N idle connections for S seconds (prints when ready)"""
import socket
import struct
import sys
import time

path, case = sys.argv[1], sys.argv[2]


def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect(path)
    return s


def closed(s):
    try:
        return s.recv(70000) == b''
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def frame(body, magic=0x5343, version=1, typ=1, flags=0, blen=None):
    return struct.pack('>HHHHII', magic, version, typ, flags, 7,
                       len(body) if blen is None else blen) + body


if case in ('oversize', 'garbage', 'truncated'):
    s = conn()
    msg = {'oversize': frame(b'x' * (70000 - 16)),
           'garbage': frame(b'', magic=0xdead),
           'truncated': frame(b'x' * 10, blen=100)}[case]
    try:
        s.send(msg)
    except OSError as e:
        print(f'{case}: send refused by the kernel ({e}); closed')
        sys.exit(0)
    ok = closed(s)
    print(f'{case}: connection {"closed" if ok else "left open"}')
    sys.exit(0 if ok else 1)

if case == 'flood':
    n = int(sys.argv[3])
    socks = [conn() for _ in range(n)]
    time.sleep(0.5)
    shut = 0
    for s in socks:
        s.settimeout(0.2)
        if closed(s):
            shut += 1
    print(f'flood: {n} connections, {n - shut} kept, {shut} closed by the daemon')
    sys.exit(0)

if case == 'hoard':
    socks = [conn() for _ in range(int(sys.argv[3]))]
    print('hoarding', flush=True)
    time.sleep(float(sys.argv[4]))
    sys.exit(0)

sys.exit(2)
