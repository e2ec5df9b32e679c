#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# End-to-end check with the real openssl binary, configured the way a
# service is: an OPENSSL_CONF that includes our snippet, overrides the
# module path (the build-dir shortcert.so) and points at a fake shortcertd
# on a path socket.  Proves that `openssl list -providers` shows shortcert
# active, that `openssl pkey -pubout` reads a reference file, and that
# `openssl s_server -key ref.pem` completes TLS 1.3 and TLS 1.2 handshakes
# that `s_client -verify_return_error` accepts.  Exit 77 means skipped.
set -eu

: "${OPENSSL:=openssl}"
: "${SHORTCERT_MODULE:?}" "${SHORTCERT_SNIPPET:?}" "${FAKE_SIGNER:?}"

# An ASan-built module inside the uninstrumented openssl binary needs the
# ASan runtime loaded first.
if [ "${SHORTCERT_SANITIZE:-none}" != none ]; then
    libasan=$(${CC:-cc} -print-file-name=libasan.so 2>/dev/null || true)
    case "$libasan" in
    /*) [ -e "$libasan" ] || exit 77 ;;
    *) exit 77 ;;
    esac
    preload="$libasan"
    case "$SHORTCERT_SANITIZE" in
    *undefined*)
        libubsan=$(${CC:-cc} -print-file-name=libubsan.so 2>/dev/null || true)
        [ -e "$libubsan" ] && preload="$preload $libubsan"
        ;;
    esac
    # openssl itself leaks at exit by design; we look for memory errors.
    export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
    run_preload=$preload
else
    run_preload=
fi

dir=$(mktemp -d /tmp/shortcert-cli-XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -f "$dir/fake.pid" ] && kill "$(cat "$dir/fake.pid")" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    for f in "$dir"/*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
    exit 1
}

# Runs openssl as the service would: our OPENSSL_CONF, the sanitizer
# runtime preloaded when needed.
svc_openssl() {
    OPENSSL_CONF="$dir/svc.cnf" LD_PRELOAD="$run_preload" "$OPENSSL" "$@"
}

# A key and certificate made without our provider.
OPENSSL_CONF=/dev/null "$OPENSSL" req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" \
    -out "$dir/cert.pem" -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost 2>"$dir/req.log" || fail "req"

# The reference (with its explanatory text), and the fake daemon.
"$FAKE_SIGNER" --key "$dir/key.pem" --identity api --write-ref "$dir/ref.pem" \
    --socket "$dir/shortcert.sock" --pidfile "$dir/fake.pid" \
    --cert "$dir/cert.pem" >"$dir/fake.log" 2>&1 || fail "fake signer"
head -1 "$dir/ref.pem" | grep -q "shortcert key reference" || fail "ref text"

cat >"$dir/svc.cnf" <<EOF
openssl_conf = openssl_init
.include $SHORTCERT_SNIPPET
[shortcert_sect]
module = $SHORTCERT_MODULE
shortcert-socket = $dir/shortcert.sock
EOF

svc_openssl list -providers >"$dir/providers.log" 2>&1 || fail "list"
grep -A3 '^  shortcert$' "$dir/providers.log" | grep -q 'status: active' ||
    fail "shortcert not active"
grep -A3 '^  default$' "$dir/providers.log" | grep -q 'status: active' ||
    fail "default not active"

svc_openssl pkey -in "$dir/ref.pem" -pubout -out "$dir/pub-ref.pem" \
    2>"$dir/pkey.log" || fail "pkey -pubout from the reference"
OPENSSL_CONF=/dev/null "$OPENSSL" pkey -in "$dir/key.pem" -pubout \
    -out "$dir/pub-key.pem" 2>>"$dir/pkey.log" || fail "pkey -pubout"
cmp -s "$dir/pub-ref.pem" "$dir/pub-key.pem" || fail "public keys differ"
# The private key must not come out of a reference.
if svc_openssl pkey -in "$dir/ref.pem" -out "$dir/priv.pem" \
    2>>"$dir/pkey.log"; then
    fail "pkey wrote a private key from a reference"
fi

# shortcert:NAME lists the key, then the certificate (fetched from the
# daemon, no file); a malformed URI and an unknown identity are refused.
svc_openssl storeutl -noout shortcert:api >"$dir/storeutl.log" 2>&1 ||
    fail "storeutl shortcert:api"
grep -q '^0: Pkey' "$dir/storeutl.log" || fail "storeutl: no key first"
grep -q '^1: Certificate' "$dir/storeutl.log" || fail "storeutl: no certificate"
grep -q 'Total found: 2' "$dir/storeutl.log" || fail "storeutl: not 2 objects"
if svc_openssl storeutl -noout 'shortcert:api?x=1' >"$dir/storeutl-bad.log" 2>&1; then
    fail "storeutl accepted shortcert:api?x=1"
fi
grep -q 'not a shortcert URI' "$dir/storeutl-bad.log" || fail "bad URI: no clear error"
if svc_openssl storeutl -noout shortcert:nope >"$dir/storeutl-none.log" 2>&1; then
    fail "storeutl accepted an unknown identity"
fi
grep -q "refused to give the key reference and certificates for identity 'nope'" \
    "$dir/storeutl-none.log" || fail "unknown identity: no clear error"

# s_server from a reference file, then from the URI alone.
for src in file uri; do
    if [ $src = file ]; then
        set -- -key "$dir/ref.pem" -cert "$dir/cert.pem"
    else
        set -- -key shortcert:api -cert shortcert:api
    fi
    : >"$dir/s_server.log"
    svc_openssl s_server -www -accept 127.0.0.1:0 -naccept 2 "$@" \
        -cipher ECDHE+AESGCM \
        >"$dir/s_server.log" 2>&1 </dev/null &
    server_pid=$!
    port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$dir/s_server.log")
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || fail "s_server exited"
        sleep 0.1
    done
    [ -n "$port" ] || fail "s_server did not start"

    for v in -tls1_3 -tls1_2; do
        # The client needs nothing of ours: plain default provider.
        OPENSSL_CONF=/dev/null "$OPENSSL" s_client -connect "127.0.0.1:$port" "$v" \
            -CAfile "$dir/cert.pem" -verify_return_error \
            -verify_hostname localhost -servername localhost \
            </dev/null >"$dir/s_client$v.log" 2>&1 || fail "s_client $v"
        grep -q 'Verify return code: 0 (ok)' "$dir/s_client$v.log" ||
            fail "s_client $v: not verified"
        case $v in
        -tls1_3) want=TLSv1.3 ;;
        *) want=TLSv1.2 ;;
        esac
        grep -q "Protocol *: *$want" "$dir/s_client$v.log" ||
            grep -q "New, $want" "$dir/s_client$v.log" ||
            fail "s_client $v: not $want"
    done
    wait "$server_pid" || true
    server_pid=
done
echo "openssl CLI: list -providers, pkey -pubout, storeutl shortcert:, s_server (file and URI) TLS 1.3 + 1.2: ok"
