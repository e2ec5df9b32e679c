#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""activator.py SOCKET... -- COMMAND...

What systemd does for shortcertd.socket + Type=notify, for the tests:
holds listening SOCK_SEQPACKET sockets at the given paths, starts COMMAND
with them as fds 3.. (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) and with
NOTIFY_SOCKET, prints every sd_notify message it receives ("NOTIFY
READY=1"), restarts COMMAND on SIGUSR1 while keeping the sockets (so
clients queue in the backlog instead of failing), and stops it on SIGTERM."""
import os
import signal
import socket
import sys
import time

sep = sys.argv.index('--')
paths, cmd = sys.argv[1:sep], sys.argv[sep + 1:]
socks = []
for p in paths:
    if os.path.exists(p):
        os.unlink(p)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(p)
    os.chmod(p, 0o666 if 'admin' not in os.path.basename(p) else 0o600)
    s.listen(128)
    socks.append(s)
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify_name = '\0shortcert-test-notify-%d' % os.getpid()
notify.bind(notify_name)
notify.settimeout(0.2)
child = None
restart = False
stop = False


def spawn():
    pid = os.fork()
    if pid == 0:
        for i, s in enumerate(socks):
            os.dup2(s.fileno(), 3 + i)
            os.set_inheritable(3 + i, True)
        env = dict(os.environ)
        env.update(LISTEN_FDS=str(len(socks)), LISTEN_PID=str(os.getpid()),
                   LISTEN_FDNAMES=':'.join('admin' if 'admin' in p else 'sign' for p in paths),
                   NOTIFY_SOCKET='@' + notify_name[1:])
        os.execve(cmd[0], cmd, env)
    print('STARTED %d' % pid, flush=True)
    return pid


def on_usr1(*_):
    global restart
    restart = True


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, on_term)
child = spawn()
while not stop:
    try:
        msg = notify.recv(4096).decode(errors='replace')
        for line in msg.splitlines():
            print('NOTIFY ' + line, flush=True)
    except socket.timeout:
        pass
    except InterruptedError:
        pass
    if restart:
        restart = False
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)
        print('RESTARTING', flush=True)
        child = spawn()
    done, status = os.waitpid(child, os.WNOHANG)
    if done:
        print('EXITED %d' % status, flush=True)
        break
if not done:
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
