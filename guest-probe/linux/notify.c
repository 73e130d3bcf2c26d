// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * notify.c - `notify-baseline`: the bare cost of a notification in this
 * guest, measured without the device: one thread writes an eventfd, another
 * blocked in read() on it wakes up, notes the time and answers on a second
 * eventfd.  Wake-ups per second, the one-way wake-up latency (write -> the
 * woken thread running) and CPU per 1000 wake-ups are the floor that any
 * event delivery mode (the inverted call, poll, the shared ring) builds on;
 * the throughput suite prints them beside the ceiling case of each mode.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "probe_linux.h"

struct pingpong {
	int to_b, to_a;
	uint64_t rounds;
	uint64_t *sent;		/* A's clock before each write */
	uint64_t *lat;		/* B's wake-up - sent */
	int err;
};

static void *pp_b(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t v, i;

	for (i = 0; i < pp->rounds; i++) {
		if (read(pp->to_b, &v, sizeof(v)) != sizeof(v)) {
			pp->err = errno ? errno : EIO;
			break;
		}
		pp->lat[i] = now_ns() - __atomic_load_n(&pp->sent[i], __ATOMIC_ACQUIRE);
		v = 1;
		if (write(pp->to_a, &v, sizeof(v)) != sizeof(v)) {
			pp->err = errno ? errno : EIO;
			break;
		}
	}
	return NULL;
}

int cmd_notify_baseline(const struct probe_opts *o)
{
	uint64_t rounds = o->count > 100 ? o->count : 2000, i, v, t0, c0, wall, cpu;
	struct pingpong pp;
	struct result r;
	pthread_t th;

	r_init(&r, "throughput", "notify-baseline", NULL);
	memset(&pp, 0, sizeof(pp));
	pp.rounds = rounds;
	pp.sent = calloc(rounds, sizeof(uint64_t));
	pp.lat = calloc(rounds, sizeof(uint64_t));
	pp.to_b = eventfd(0, EFD_CLOEXEC);
	pp.to_a = eventfd(0, EFD_CLOEXEC);
	if (!pp.sent || !pp.lat || pp.to_b < 0 || pp.to_a < 0) {
		r_fail(&r, "set-up: %s", strerror(errno ? errno : ENOMEM));
		goto out;
	}
	r_dstr(&r, "mechanism", "eventfd write -> read() wake-up in another thread");
	t0 = now_ns();
	c0 = os_cpu_ns();
	if (pthread_create(&th, NULL, pp_b, &pp)) {
		r_fail(&r, "pthread_create: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < rounds && !pp.err; i++) {
		__atomic_store_n(&pp.sent[i], now_ns(), __ATOMIC_RELEASE);
		v = 1;
		if (write(pp.to_b, &v, sizeof(v)) != sizeof(v) ||
		    read(pp.to_a, &v, sizeof(v)) != sizeof(v)) {
			pp.err = errno ? errno : EIO;
			break;
		}
	}
	pthread_join(th, NULL);
	wall = now_ns() - t0;
	cpu = os_cpu_ns() - c0;
	if (pp.err) {
		r_fail(&r, "ping-pong: %s", strerror(pp.err));
		goto out;
	}
	/* every round is two wake-ups (B by A, A by B); latency is A -> B */
	r_metric(&r, "wakeups_per_s", (double)(2 * rounds) / ((double)wall / 1e9), "wakeups/s");
	r_metric(&r, "cpu_us_per_1000_events", (double)cpu / 1e3 / ((double)(2 * rounds) / 1000.0), "us");
	r_metric(&r, "cpu_time", (double)cpu / 1e9, "s");
	qsort(pp.lat, rounds, sizeof(uint64_t), cmp_u64);
	r_metric(&r, "latency_p50", (double)pp.lat[rounds / 2], "ns");
	r_metric(&r, "latency_p99", (double)pp.lat[rounds * 99 / 100], "ns");
	r_metric(&r, "latency_max", (double)pp.lat[rounds - 1], "ns");
	r_metric(&r, "latency_samples", (double)rounds, "samples");
out:
	if (pp.to_b >= 0)
		close(pp.to_b);
	if (pp.to_a >= 0)
		close(pp.to_a);
	free(pp.sent);
	free(pp.lat);
	r_emit(&r);
	return 0;
}
