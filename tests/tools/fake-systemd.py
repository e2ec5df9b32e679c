#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""fake-systemd.py LOG : a FAKE org.freedesktop.systemd1 on the bus named by
DBUS_SYSTEM_BUS_ADDRESS, for the test of shortcertd's systemd-reload action
where PID 1 is not systemd.  It is not systemd: it implements only what the
action uses, Manager.Subscribe() and Manager.ReloadUnit(unit, mode), and
emits Manager.JobRemoved(id, job, unit, result) a little later, like
systemd does when the job ends.  Units: "fail.service" ends "failed",
"slow.service" never ends, "missing.service" is NoSuchUnit, any other
"done".  Every call is appended to LOG."""
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = 'org.freedesktop.systemd1.Manager'
PATH = '/org/freedesktop/systemd1'


class Manager(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, PATH)
        self.log = log
        self.next_id = 1

    def note(self, line):
        with open(self.log, 'a') as f:
            f.write(line + '\n')

    @dbus.service.method(IFACE, in_signature='', out_signature='')
    def Subscribe(self):
        self.note('Subscribe')

    @dbus.service.method(IFACE, in_signature='ss', out_signature='o')
    def ReloadUnit(self, unit, mode):
        self.note('ReloadUnit %s %s' % (unit, mode))
        if unit == 'missing.service':
            raise dbus.exceptions.DBusException(
                'Unit %s not found.' % unit,
                name='org.freedesktop.systemd1.NoSuchUnit')
        jid = self.next_id
        self.next_id += 1
        job = dbus.ObjectPath('%s/job/%d' % (PATH, jid))
        result = 'failed' if unit == 'fail.service' else 'done'
        if unit != 'slow.service':
            # another job's removal first: the action must wait for its own
            GLib.timeout_add(20, self.JobRemoved, dbus.UInt32(jid + 1000),
                             dbus.ObjectPath('%s/job/%d' % (PATH, jid + 1000)),
                             'other.service', 'failed')
            GLib.timeout_add(100, self.JobRemoved, dbus.UInt32(jid), job,
                             unit, result)
        return job

    @dbus.service.signal(IFACE, signature='uoss')
    def JobRemoved(self, jid, job, unit, result):
        return False  # (as a GLib timeout callback: do not repeat)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    name = dbus.service.BusName('org.freedesktop.systemd1', bus)
    Manager(bus, sys.argv[1])
    print('ready', flush=True)
    GLib.MainLoop().run()
    del name


if __name__ == '__main__':
    main()
