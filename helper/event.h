/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every epoll registration in shortcertd points at a struct that starts
 * with struct ev_source, so the event loop can tell what woke it.
 */
#ifndef SHORTCERT_EVENT_H
#define SHORTCERT_EVENT_H

enum ev_kind {
    EV_SIGNAL = 1,
    EV_LISTENER,
    EV_CONN,
};

struct ev_source {
    int kind; /* enum ev_kind */
};

#endif
