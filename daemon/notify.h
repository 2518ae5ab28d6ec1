/*
 * notify — the systemd notification protocol (sd_notify(3)), written by hand so hrsync
 * needs no libsystemd: one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET (a path, or '@' for an abstract socket). READY=1, STATUS=...,
 * RELOADING=1, STOPPING=1 and the WATCHDOG=1 keep-alives of a Type=notify service.
 *
 * Owns: one helper thread (between notify_watchdog_start and _stop) that sends WATCHDOG=1
 * at half of $WATCHDOG_USEC while the main thread is busy in a sync run. The thread
 * blocks every signal, so SIGTERM and SIGHUP always reach the main thread.
 * Never: sends anything when $NOTIFY_SOCKET is unset, or fails the daemon over a lost
 * notification (systemd may have gone away: hrsync keeps working).
 */
#ifndef HRSYNC_NOTIFY_H
#define HRSYNC_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Send state (e.g. "READY=1\nSTATUS=idle"). 1 sent, 0 no $NOTIFY_SOCKET, -1 error (errno). */
int notify_send(const char *state);
int notify_sendf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/*
 * The watchdog interval asked by systemd in microseconds ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or ours); 0 when there is no watchdog.
 */
uint64_t notify_watchdog_usec(void);

/* Start or stop the keep-alive thread (no-op without a watchdog). Not reentrant. */
bool notify_watchdog_start(void);
void notify_watchdog_stop(void);

#endif
