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
  hoard N S  hold N idle connections for S seconds (prints when ready)
  fetch-trailing  a FETCH with a byte after the name -> closed
  fetch-badname   a FETCH for the name "../x"        -> closed
  fetch NAME [V]  a well-formed FETCH (protocol version V, default 2):
             prints "ok REF_SHA256 N CERT_SHA256..." or "error CODE MSG";
             exits 0 only for a reply that parses strictly (right type,
             version and id, bounded fields, nothing left over)"""
import hashlib
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

if case in ('fetch-trailing', 'fetch-badname'):
    s = conn()
    name = b'api' if case == 'fetch-trailing' else b'../x'
    body = struct.pack('>I', len(name)) + name
    if case == 'fetch-trailing':
        body += b'\0'
    s.send(frame(body, version=2, typ=5))
    ok = closed(s)
    print(f'{case}: connection {"closed" if ok else "left open"}')
    sys.exit(0 if ok else 1)


def take_blob(buf, off, cap):
    if off + 4 > len(buf):
        raise ValueError('truncated length')
    (n,) = struct.unpack('>I', buf[off:off + 4])
    if n > cap or off + 4 + n > len(buf):
        raise ValueError('blob out of bounds')
    return buf[off + 4:off + 4 + n], off + 4 + n


if case == 'fetch':
    name = sys.argv[3].encode()
    version = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    s = conn()
    s.send(frame(struct.pack('>I', len(name)) + name, version=version, typ=5))
    rep = s.recv(70000)
    try:
        magic, ver, typ, flags, rid, blen = struct.unpack('>HHHHII', rep[:16])
        body = rep[16:]
        if (magic, ver, flags, rid, blen) != (0x5343, version, 0, 7, len(body)):
            raise ValueError('bad header')
        if typ == 0x8000:
            code, detail = struct.unpack('>II', body[:8])
            msg, off = take_blob(body, 8, 256)
            if off != len(body):
                raise ValueError('bytes after the error')
            print(f'error {code} {msg.decode("ascii")}')
            sys.exit(0)
        if typ != 0x8005:
            raise ValueError(f'type {typ:#x}')
        ref, off = take_blob(body, 0, 8192)
        (n,) = struct.unpack('>I', body[off:off + 4])
        off += 4
        if not ref or n > 16:
            raise ValueError('reference or count out of range')
        certs = []
        for _ in range(n):
            c, off = take_blob(body, off, 65536)
            if not c:
                raise ValueError('empty certificate')
            certs.append(c)
        if off != len(body):
            raise ValueError('bytes after the last certificate')
    except (ValueError, struct.error) as e:
        print(f'malformed reply: {e}')
        sys.exit(1)
    print('ok', hashlib.sha256(ref).hexdigest(), len(certs),
          *[hashlib.sha256(c).hexdigest() for c in certs])
    sys.exit(0)

sys.exit(2)
