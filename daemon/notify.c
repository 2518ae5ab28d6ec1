/*
 * notify — see notify.h.
 */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, len);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract: no trailing NUL counts in the length */
	else
		salen++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rc = 1;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		rc = -1;
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int notify_sendf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return notify_send(buf);
}

uint64_t notify_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	long long v, p;
	if (!us || !parse_ll(us, &v) || v <= 0)
		return 0;
	if (pid && *pid && (!parse_ll(pid, &p) || p != (long long)getpid()))
		return 0;
	return (uint64_t)v;
}

/* ---- the keep-alive thread ---- */

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running, quit;
	uint64_t period_us;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wd.lock);
	while (!wd.quit) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (wd.period_us % 1000000) * 1000;
		ts.tv_sec += (time_t)(wd.period_us / 1000000 + ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		int rc = 0;
		while (!wd.quit && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&wd.wake, &wd.lock, &ts);
		if (!wd.quit)
			notify_send("WATCHDOG=1");
	}
	pthread_mutex_unlock(&wd.lock);
	return NULL;
}

bool notify_watchdog_start(void)
{
	uint64_t us = notify_watchdog_usec();
	if (!us || wd.running)
		return true;
	bool ok = false;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&wd.wake, &ca) != 0)
		goto out;
	wd.period_us = us / 2 ? us / 2 : 1;
	wd.quit = false;
	/* The thread inherits a mask blocking every signal: they stay the main thread's. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&wd.thread, NULL, watchdog_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&wd.wake);
		goto out;
	}
	wd.running = ok = true;
out:
	pthread_condattr_destroy(&ca);
	return ok;
}

void notify_watchdog_stop(void)
{
	if (!wd.running)
		return;
	pthread_mutex_lock(&wd.lock);
	wd.quit = true;
	pthread_cond_signal(&wd.wake);
	pthread_mutex_unlock(&wd.lock);
	pthread_join(wd.thread, NULL);
	pthread_cond_destroy(&wd.wake);
	wd.running = false;
}
