#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Regenerate the seed corpora of the parsers owned by common/ and the
config parser.  Seeds are committed; run this only to refresh them.
Uses Debian's python3-cryptography for the key reference seeds."""
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    ph = os.path.join(d, 'placeholder')
    if os.path.exists(ph):
        os.unlink(ph)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def blob(b):
    return struct.pack('>I', len(b)) + b


def frame(typ, body, version=1, rid=1, flags=0):
    return struct.pack('>HHHHII', 0x5343, version, typ, flags, rid, len(body)) + body


def tls13_cv(ctx, hlen=32):
    return b' ' * 64 + ctx + b'\0' + b'\xab' * hlen


def ske(group=23, plen=65):
    curve = {23: ec.SECP256R1(), 24: ec.SECP384R1(), 25: ec.SECP521R1()}[group]
    point = ec.generate_private_key(curve).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert len(point) == plen
    return b'\x11' * 64 + bytes([3]) + struct.pack('>H', group) + bytes([plen]) + point


def sign_req(ident=b'api', gen=bytes(range(32)), scheme=1, msg=b''):
    return blob(ident) + blob(gen) + struct.pack('>I', scheme) + blob(msg)


def der_len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def keyref(ident=b'api', k=None):
    k = k or ec.generate_private_key(ec.SECP256R1())
    spki = k.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    gen = hashlib.sha256(spki).digest()
    return tlv(0x30, tlv(0x02, b'\x01') + tlv(0x0c, ident) + tlv(0x04, gen) + spki)


def main():
    server_cv = tls13_cv(b'TLS 1.3, server CertificateVerify')
    client_cv = tls13_cv(b'TLS 1.3, client CertificateVerify', 48)
    out('fuzz-ipc-request', 'sign-tls13', frame(1, sign_req(msg=server_cv)))
    out('fuzz-ipc-request', 'sign-ske', frame(1, sign_req(msg=ske(), scheme=2)))
    out('fuzz-ipc-request', 'sign-empty', frame(1, sign_req()))
    out('fuzz-ipc-request', 'status', frame(2, struct.pack('>I', 0)))
    out('fuzz-ipc-request', 'unknown-type', frame(0x77, b'abc'))
    out('fuzz-ipc-request', 'version-9', frame(1, sign_req(msg=b'x'), version=9))
    out('fuzz-ipc-reply', 'sign', frame(0x8001, blob(b'\x30\x06\x02\x01\x01\x02\x01\x02')))
    out('fuzz-ipc-reply', 'error', frame(0x8000, struct.pack('>II', 5, 0) + blob(b'permission denied')))
    out('fuzz-ipc-request', 'fetch', frame(5, blob(b'api'), version=2))
    certs = [b'\x30\x82\x01\x00' + b'\x01' * 256, b'\x30\x03\x02\x01\x05']
    fetch = blob(keyref()) + struct.pack('>I', len(certs)) + b''.join(blob(c) for c in certs)
    out('fuzz-ipc-reply', 'fetch', frame(0x8005, fetch, version=2))
    out('fuzz-ipc-reply', 'fetch-nocert', frame(0x8005, blob(keyref()) + struct.pack('>I', 0), version=2))
    out('fuzz-ipc-reply', 'fetch-trailing', frame(0x8005, fetch + b'x', version=2))
    out('fuzz-ipc-reply', 'fetch-17', frame(0x8005, blob(b'\x30\x00') + struct.pack('>I', 17) + blob(b'c') * 17, version=2))
    out('fuzz-ipc-reply', 'unknown-type', frame(0x8000, struct.pack('>II', 3, 0) + blob(b'unknown request type 0x0005'), version=2))
    out('fuzz-store-uri', 'good', 'shortcert:api')
    out('fuzz-store-uri', 'upper', 'SHORTCERT:web-1.internal_x')
    out('fuzz-store-uri', 'query', 'shortcert:api?socket=/run/x')
    out('fuzz-store-uri', 'authority', 'shortcert://api')
    out('fuzz-store-uri', 'long', 'shortcert:' + 'a' * 64)
    out('fuzz-store-uri', 'too-long', 'shortcert:' + 'a' * 65)
    out('fuzz-store-uri', 'nul', b'shortcert:api\0junk')
    out('fuzz-ipc-reply', 'status', frame(0x8002, blob(b'{"identities":[]}')))
    out('fuzz-tls-purpose', 'tls13-server', server_cv)
    out('fuzz-tls-purpose', 'tls13-client', client_cv)
    out('fuzz-tls-purpose', 'tls12-ske-p256', ske())
    out('fuzz-tls-purpose', 'tls12-ske-x25519', b'\x11' * 64 + b'\x03\x00\x1d\x20' + b'\x22' * 32)
    out('fuzz-tls-purpose', 'tls12-ske-dhe', b'\x11' * 64 + b'\x01\x00' + b'\xff' * 256 + b'\x00\x01\x02' + b'\x01\x00' + b'\x5a' * 256)
    hs = lambda t, n: bytes([t]) + n.to_bytes(3, 'big') + b'\x33' * n
    out('fuzz-tls-purpose', 'tls12-client-cv', hs(1, 100) + hs(2, 70) + hs(11, 500) + hs(14, 0) + hs(16, 66))
    out('fuzz-tls-purpose', 'jws', b'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhcGkifQ')
    r = keyref()
    out('fuzz-keyref', 'ref.der', r)
    import base64
    pem = b'shortcert key reference\n-----BEGIN SHORTCERT KEY REFERENCE-----\n' + \
        base64.encodebytes(r) + b'-----END SHORTCERT KEY REFERENCE-----\n'
    out('fuzz-keyref', 'ref.pem', pem)
    out('fuzz-keyref', 'long-name.der', keyref(b'a' * 64))
    out('fuzz-keyref', 'ref-p384.der', keyref(k=ec.generate_private_key(ec.SECP384R1())))
    out('fuzz-keyref', 'ref-rsa3072.der',
        keyref(k=rsa.generate_private_key(public_exponent=65537, key_size=3072)))
    out('fuzz-keyref', 'ref-ed25519.der', keyref(k=ed25519.Ed25519PrivateKey.generate()))
    good = ('[daemon]\nstate-dir = /var/lib/shortcert\nabstract-socket = @shortcert\n'
            'socket-group = ssl-cert\nlog-level = debug\n\n[defaults]\n'
            'ca-url = https://ca.internal.test:9443\nca-root = /etc/shortcert/root.crt\n'
            'lifetime = 24h\n\n[identity api]\nnames = api.internal.test, 127.0.0.1\n'
            '    ::1\nchain-file = /etc/ssl/api.crt\nref-file = /etc/ssl/api.ref\n'
            'ref-mode = 0600\nref-owner = root\nallow-users = www-data\nallow-groups = ssl-cert\n')
    out('fuzz-config', 'good.conf', good)
    out('fuzz-config', 'bad-section.conf', '[identity]\nnames = a\n')
    out('fuzz-config', 'dup.conf', good + good)
    out('fuzz-config', 'syntax.conf', '[daemon\nfoo\n;comment\n# c\n=x\n')


if __name__ == '__main__':
    sys.exit(main())
