// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * hardening.c - hidden commands for the driver-hardening tests
 * (test/guest/driver-hardening.test.ts).  Not part of the documented probe:
 * they are reached through os_early_command() with names starting "_hb-",
 * take positional arguments and print one result line each (suite
 * "hardening"), so the output of every documented command is unchanged.
 *
 *   _hb-nb-race SECONDS CONTENDERS
 *	poll() on a subscribed descriptor, and when it says POLLIN read from a
 *	fresh O_NONBLOCK descriptor (never subscribed: its first read
 *	subscribes it) while CONTENDERS threads keep changing their own
 *	subscription.  The only consumer is this loop, so records are queued
 *	whenever poll said POLLIN: an EAGAIN then is a driver bug.
 *   _hb-efault-race RECORDS
 *	reader A blocks in read() on a buffer that is made PROT_NONE while it
 *	waits; reader B (queued after A) reads RECORDS records with good
 *	buffers; then events are enabled.  A must fail with EFAULT and B must
 *	see strictly increasing sequence numbers.
 *   _hb-first-event
 *	DEVICE_CLOCK, subscribe, the first record read: its seq and timestamp.
 *   _hb-drain-reader RECORDS CPU TIMEOUT_MS
 *	pinned to CPU, subscribed: poll() for POLLIN (waiting for records is
 *	not counted), then an O_NONBLOCK read() timed from entry to return —
 *	a read that finds records waits only for the driver's locks, so its
 *	duration is how long a reader on this CPU waits while the interrupt
 *	side drains; until RECORDS records or TIMEOUT_MS.
 *   _hb-uring-pending PENDING
 *	PENDING IORING_OP_READs with IOSQE_ASYNC and PENDING without, on an
 *	unsubscribed descriptor: how many of them the driver counts as
 *	blocked readers (readers_waiting); then events are enabled and every
 *	read must complete with one record.
 *   _hb-open-close COUNT THREADS
 *	THREADS threads each open the device, read STATS and close it, COUNT
 *	times in all (the robustness suite's open/close stress): every open,
 *	ioctl and close must succeed.
 *   _hb-copy-uffd HOLD_MS
 *	COPY_FRAME (no seqlock) into a buffer whose second half is registered
 *	with userfaultfd and never served: the copy stops in a fault on it.
 *	Says "blocked" on stderr when the fault arrives, holds it HOLD_MS,
 *	then closes the userfaultfd (the fault completes) and reports how
 *	the copy ended (copy_errno: ENODEV after an unbind meanwhile).  The
 *	copy must take the fault without the hardware lock, or the unbind
 *	waits for the userfaultfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "probe_linux.h"

#define HB_SUITE	"hardening"

static int open_or_fail(struct result *r, int flags)
{
	int fd = dev_open(flags);

	if (fd < 0)
		r_fail(r, "open %s: %s", g_dev, strerror(-fd));
	return fd;
}

/* waits until STATS.readers_waiting >= n; false on timeout */
static bool wait_readers(int fd, unsigned int n, unsigned int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct hilbox_stats st;

	while (now_ns() < deadline) {
		if (!dev_stats(fd, &st) && st.readers_waiting >= n)
			return true;
		sleep_ms(5);
	}
	return false;
}

static void on_sig(int sig)
{
	(void)sig;
}

/* ------------------------------------------------------------------ */
/* _hb-nb-race                                                         */

static volatile int g_nb_stop;

static void *nb_contender(void *arg)
{
	int fd = dev_open(O_RDONLY);
	unsigned long *rounds = arg;

	if (fd < 0)
		return NULL;
	while (!g_nb_stop) {
		dev_set_events(fd, 1, 0);
		dev_set_events(fd, 0, 0);
		(*rounds)++;
	}
	close(fd);
	return NULL;
}

static int cmd_nb_race(double seconds, unsigned int contenders)
{
	struct hilbox_event ev[16];
	pthread_t th[16];
	unsigned long rounds[16] = { 0 };
	uint64_t deadline, pollin = 0, eagain = 0, errors = 0, reads = 0;
	uint64_t eagain_queued = 0;
	struct hilbox_stats st;
	struct ev_acc a;
	struct result r;
	unsigned int i, started = 0;
	int fd, fresh;
	ssize_t n;

	memset(&a, 0, sizeof(a));
	r_init(&r, HB_SUITE, "nb-read-after-pollin", NULL);
	if (contenders > 16)
		contenders = 16;
	fd = open_or_fail(&r, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (dev_set_events(fd, 1, HILBOX_EVCTL_FLUSH)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	g_nb_stop = 0;
	for (i = 0; i < contenders; i++)
		if (!pthread_create(&th[i], NULL, nb_contender, &rounds[i]))
			started++;
	deadline = now_ns() + (uint64_t)(seconds * 1e9);
	while (now_ns() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		fresh = dev_open(O_RDONLY | O_NONBLOCK);
		if (fresh < 0) {
			r_fail(&r, "open %s: %s", g_dev, strerror(-fresh));
			break;
		}
		if (poll(&p, 1, 100) > 0 && (p.revents & POLLIN)) {
			pollin++;
			n = read(fresh, ev, sizeof(ev));
			reads++;
			if (n < 0 && errno == EAGAIN) {
				eagain++;
				/* nobody else reads: the records are still there */
				if (!dev_stats(fd, &st) && st.ring_level)
					eagain_queued++;
			} else if (n < 0) {
				errors++;
			} else {
				for (i = 0; i < (unsigned int)n / EV_SZ; i++)
					acc_add(&a, &ev[i], 0);
			}
		}
		close(fresh);
	}
	g_nb_stop = 1;
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	r_metric(&r, "pollin", (double)pollin, "polls");
	r_metric(&r, "reads", (double)reads, "reads");
	r_metric(&r, "eagain_after_pollin", (double)eagain, "reads");
	r_metric(&r, "eagain_with_records_queued", (double)eagain_queued, "reads");
	r_metric(&r, "read_errors", (double)errors, "reads");
	r_metric(&r, "records", (double)a.n, "records");
	r_metric(&r, "order_violations", (double)(a.order_viol + a.dup), "records");
	{
		unsigned long total = 0;

		for (i = 0; i < started; i++)
			total += rounds[i];
		r_metric(&r, "contender_rounds", (double)total, "rounds");
	}
	r_dnum(&r, "contenders", started);
	if (eagain)
		r_fail(&r, "%llu non-blocking reads returned EAGAIN after POLLIN "
		       "with records queued", (unsigned long long)eagain);
	if (errors)
		r_fail(&r, "%llu reads failed", (unsigned long long)errors);
	if (!pollin)
		r_fail(&r, "no record arrived (is the generator on?)");
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* _hb-efault-race                                                     */

struct ef_reader {
	pthread_t th;
	int fd;
	void *buf;
	ssize_t ret;
	int err;
	/* B only */
	uint64_t want;
	uint64_t deadline;
	struct ev_acc acc;
	uint64_t first_seqs[8];
	unsigned int nfirst;
};

static volatile int g_ef_stop;

static void *ef_bad_reader(void *arg)
{
	struct ef_reader *t = arg;

	t->ret = read(t->fd, t->buf, 16 * EV_SZ);
	t->err = t->ret < 0 ? errno : 0;
	return NULL;
}

static void *ef_good_reader(void *arg)
{
	struct ef_reader *t = arg;
	struct hilbox_event ev[16];
	ssize_t n;
	unsigned int i;

	while (!g_ef_stop && t->acc.n < t->want && now_ns() < t->deadline) {
		n = read(t->fd, ev, sizeof(ev));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			t->err = errno;
			break;
		}
		if (t->nfirst < 8)
			t->first_seqs[t->nfirst++] = ev[0].seq;
		for (i = 0; i < (unsigned int)n / EV_SZ; i++)
			acc_add(&t->acc, &ev[i], 0);
	}
	return NULL;
}

static int cmd_efault_race(uint64_t records)
{
	struct ef_reader a, b;
	struct sigaction sa;
	struct result r;
	char seqs[256];
	size_t sl = 0;
	unsigned int i;
	bool a_started = false, b_started = false;
	int fd, fd2 = -1;
	void *page;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;		/* no SA_RESTART: a blocked read returns */
	sigaction(SIGUSR1, &sa, NULL);
	g_ef_stop = 0;
	r_init(&r, HB_SUITE, "efault-race", NULL);
	fd = open_or_fail(&r, O_RDONLY);
	if (fd < 0)
		goto out;
	/* unsubscribed (no auto-subscribe) and an empty ring: nothing flows yet */
	if (dev_set_events(fd, 0, HILBOX_EVCTL_FLUSH)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		r_fail(&r, "mmap: %s", strerror(errno));
		goto out_close;
	}
	memset(page, 0, 4096);
	a.fd = fd;
	a.buf = page;
	if (pthread_create(&a.th, NULL, ef_bad_reader, &a)) {
		r_fail(&r, "pthread_create failed");
		goto out_unmap;
	}
	a_started = true;
	if (!wait_readers(fd, 1, 5000)) {
		r_fail(&r, "reader A never blocked in read()");
		goto out_join;
	}
	/* A passed the driver's buffer checks and waits: now its buffer goes away */
	mprotect(page, 4096, PROT_NONE);
	b.fd = fd;
	b.want = records;
	b.deadline = now_ns() + 20000000000ull;
	if (pthread_create(&b.th, NULL, ef_good_reader, &b)) {
		r_fail(&r, "pthread_create failed");
		goto out_join;
	}
	b_started = true;
	if (!wait_readers(fd, 2, 5000)) {
		r_fail(&r, "reader B never blocked in read()");
		goto out_join;
	}
	fd2 = dev_open(O_RDONLY);
	if (fd2 < 0 || dev_set_events(fd2, 1, 0)) {
		r_fail(&r, "cannot enable events");
		goto out_join;
	}
out_join:
	if (a_started) {
		uint64_t until = now_ns() + 20000000000ull;

		while (pthread_tryjoin_np(a.th, NULL) == EBUSY) {
			if (now_ns() > until) {
				g_ef_stop = 1;
				pthread_kill(a.th, SIGUSR1);
				pthread_join(a.th, NULL);
				break;
			}
			sleep_ms(10);
		}
	}
	if (b_started) {
		while (pthread_tryjoin_np(b.th, NULL) == EBUSY) {
			if (now_ns() > b.deadline) {
				g_ef_stop = 1;
				pthread_kill(b.th, SIGUSR1);
				pthread_join(b.th, NULL);
				break;
			}
			sleep_ms(10);
		}
	}
	r_dstr(&r, "reader_a", a.ret >= 0 ? "returned data" : errname(a.err));
	r_dnum(&r, "reader_a_ret", (double)a.ret);
	r_metric(&r, "records", (double)b.acc.n, "records");
	r_metric(&r, "order_violations", (double)b.acc.order_viol, "records");
	r_metric(&r, "duplicates", (double)b.acc.dup, "events");
	r_metric(&r, "seq_gaps", (double)b.acc.gaps, "events");
	r_dnum(&r, "first_seq", (double)b.acc.first);
	r_dnum(&r, "last_seq", (double)b.acc.last);
	for (i = 0; i < b.nfirst; i++)
		appendf(seqs, sizeof(seqs), &sl, "%s%llu", i ? "," : "",
			(unsigned long long)b.first_seqs[i]);
	r_dstr(&r, "reader_b_first_seq_of_reads", sl ? seqs : "");
	if (b.err)
		r_dstr(&r, "reader_b_error", errname(b.err));
	if (a_started && b_started) {
		if (a.ret >= 0 || a.err != EFAULT)
			r_fail(&r, "reader A: %s, expected EFAULT",
			       a.ret >= 0 ? "got records" : errname(a.err));
		if (b.acc.order_viol || b.acc.dup)
			r_fail(&r, "reader B saw %llu records out of sequence order",
			       (unsigned long long)(b.acc.order_viol + b.acc.dup));
		if (b.acc.n < records)
			r_fail(&r, "reader B got %llu of %llu records",
			       (unsigned long long)b.acc.n, (unsigned long long)records);
	}
	if (fd2 >= 0)
		close(fd2);
out_unmap:
	munmap(page, 4096);
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* _hb-first-event                                                     */

static int cmd_first_event(void)
{
	struct pollfd p;
	struct hilbox_event ev;
	struct result r;
	uint64_t clk = 0, deadline;
	ssize_t n = -1;
	int fd;

	r_init(&r, HB_SUITE, "first-event", NULL);
	fd = open_or_fail(&r, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (dev_clock(fd, &clk)) {
		r_fail(&r, "HILBOX_IOC_CLOCK: %s", strerror(errno));
		goto out_close;
	}
	if (dev_set_events(fd, 1, 0)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	deadline = now_ns() + 20000000000ull;
	while (now_ns() < deadline) {
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, &ev, sizeof(ev));
		if (n == (ssize_t)sizeof(ev) || (n < 0 && errno != EAGAIN))
			break;
	}
	if (n != (ssize_t)sizeof(ev)) {
		r_fail(&r, "no record: %s", n < 0 ? strerror(errno) : "timed out");
		goto out_close;
	}
	r_dnum(&r, "device_clock_at_open", (double)clk);
	r_dnum(&r, "first_seq", (double)ev.seq);
	r_dnum(&r, "first_timestamp", (double)ev.timestamp_ns);
	r_dnum(&r, "first_source", ev.source);
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* _hb-drain-reader                                                    */

static int cmd_drain_reader(uint64_t records, int cpu, unsigned int timeout_ms)
{
	static struct hilbox_event ev[256];
	uint64_t deadline, reads = 0, slow = 0, longest = 0, errors = 0;
	struct ev_acc a;
	struct result r;
	cpu_set_t set;
	ssize_t n;
	int fd;

	memset(&a, 0, sizeof(a));
	r_init(&r, HB_SUITE, "drain-reader", NULL);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		r_fail(&r, "sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
		goto out;
	}
	fd = open_or_fail(&r, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (dev_set_events(fd, 1, 0)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	/* subscribed: the caller may now feed */
	fprintf(stderr, "drain-reader: subscribed on cpu %d\n", cpu);
	deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (a.n < records && now_ns() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t t0, dt;

		if (poll(&p, 1, 100) <= 0 || !(p.revents & POLLIN))
			continue;
		t0 = now_ns();
		n = read(fd, ev, sizeof(ev));
		dt = now_ns() - t0;
		reads++;
		if (n < 0) {
			if (errno != EAGAIN)
				errors++;
			continue;
		}
		if (dt > longest)
			longest = dt;
		if (dt > 5000000ull)
			slow++;
		for (size_t i = 0; i < (size_t)n / EV_SZ; i++)
			acc_add(&a, &ev[i], 0);
	}
	r_metric(&r, "records", (double)a.n, "records");
	r_metric(&r, "reads", (double)reads, "reads");
	r_metric(&r, "read_errors", (double)errors, "reads");
	r_metric(&r, "reader_max_wait_ms", (double)longest / 1e6, "ms");
	r_metric(&r, "reader_waits_over_5ms", (double)slow, "reads");
	r_metric(&r, "seq_gaps", (double)a.gaps, "events");
	r_metric(&r, "order_violations", (double)(a.order_viol + a.dup), "records");
	r_dnum(&r, "cpu", cpu);
	if (a.n < records)
		r_fail(&r, "%llu of %llu records within %u ms", (unsigned long long)a.n,
		       (unsigned long long)records, timeout_ms);
	if (errors)
		r_fail(&r, "%llu reads failed", (unsigned long long)errors);
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* _hb-uring-pending                                                   */

static int cmd_uring_pending(unsigned int pending)
{
	struct hilbox_event *bufs;
	struct io_uring_cqe cqes[64];
	struct hilbox_stats st;
	struct result r;
	struct uring u;
	unsigned int i, done = 0, ok = 0, total;
	uint64_t deadline;
	int fd, fd2 = -1, ret, n, k;

	r_init(&r, HB_SUITE, "uring-pending", NULL);
	if (!pending || pending > 16)
		pending = 4;
	total = 2 * pending;
	bufs = calloc(total, EV_SZ);
	fd = open_or_fail(&r, O_RDONLY);
	if (fd < 0 || !bufs)
		goto out;
	if (dev_set_events(fd, 0, HILBOX_EVCTL_FLUSH)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	ret = uring_init(&u, 64);
	if (ret) {
		r_skip(&r, "io_uring_setup: %s", strerror(-ret));
		goto out_close;
	}
	for (i = 0; i < total; i++)
		uring_queue_read(&u, fd, &bufs[i], EV_SZ, i, i < pending ? IOSQE_ASYNC : 0);
	uring_submit(&u);
	sleep_ms(1500);
	if (dev_stats(fd, &st)) {
		r_fail(&r, "HILBOX_IOC_STATS: %s", strerror(errno));
		goto out_exit;
	}
	r_metric(&r, "readers_waiting", st.readers_waiting, "requests");
	r_dnum(&r, "pending_async", pending);
	r_dnum(&r, "pending_inline", pending);
	fd2 = dev_open(O_RDONLY);
	if (fd2 < 0 || dev_set_events(fd2, 1, 0)) {
		r_fail(&r, "cannot enable events");
		goto out_exit;
	}
	deadline = now_ns() + 20000000000ull;
	while (done < total && now_ns() < deadline) {
		n = uring_reap(&u, cqes, 64, 100);
		for (k = 0; k < n; k++) {
			done++;
			if (cqes[k].res == (int)EV_SZ)
				ok++;
		}
	}
	r_metric(&r, "completed", done, "requests");
	r_metric(&r, "completed_with_record", ok, "requests");
	if (ok < total)
		r_fail(&r, "%u of %u reads completed with a record", ok, total);
out_exit:
	uring_exit(&u);
	if (fd2 >= 0)
		close(fd2);
out_close:
	if (fd >= 0)
		close(fd);
out:
	free(bufs);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* _hb-open-close                                                      */

struct oc_arg {
	unsigned int count;
	unsigned int failures;
	int first_errno;
};

static void *oc_thread(void *p)
{
	struct oc_arg *a = p;
	struct hilbox_stats st;
	unsigned int i;

	for (i = 0; i < a->count; i++) {
		int fd = dev_open(O_RDONLY);
		int err = fd < 0 ? -fd : 0;

		if (!err)
			err = -dev_stats(fd, &st);
		if (fd >= 0 && close(fd) && !err)
			err = errno;
		if (err) {
			if (!a->failures++)
				a->first_errno = err;
		}
	}
	return NULL;
}

static void cmd_open_close(unsigned int count, unsigned int threads)
{
	struct result r;
	pthread_t tid[64];
	struct oc_arg args[64];
	unsigned int i, started = 0, failures = 0;
	int first = 0;
	uint64_t t0 = now_ns();

	r_init(&r, HB_SUITE, "open-close", NULL);
	if (!threads || threads > 64 || !count) {
		r_fail(&r, "THREADS must be 1..64 and COUNT > 0");
		r_emit(&r);
		return;
	}
	for (i = 0; i < threads; i++) {
		args[i] = (struct oc_arg){ .count = count / threads + (i < count % threads) };
		if (pthread_create(&tid[i], NULL, oc_thread, &args[i]))
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		if (args[i].failures && !failures)
			first = args[i].first_errno;
		failures += args[i].failures;
	}
	r_metric(&r, "cycles", count, "cycles");
	r_metric(&r, "threads", started, "threads");
	r_metric(&r, "failures", failures, "cycles");
	r_metric(&r, "open_close_ms", (double)(now_ns() - t0) / 1e6, "ms");
	if (started < threads)
		r_fail(&r, "started %u of %u threads", started, threads);
	if (failures)
		r_fail(&r, "%u of %u open/ioctl/close cycles failed, first with %s", failures, count,
		       strerror(first));
	r_emit(&r);
}

/* ------------------------------------------------------------------ */
/* _hb-copy-uffd                                                       */

struct uffd_copier {
	int fd;
	uint8_t *buf;
	size_t len;
	int err;
};

static void *uffd_copy_thread(void *arg)
{
	struct uffd_copier *c = arg;
	struct hilbox_copy_frame cf;

	c->err = -dev_copy(c->fd, c->buf, c->len, HILBOX_COPY_NO_SEQLOCK, 0, &cf);
	return NULL;
}

static int cmd_copy_uffd(unsigned int hold_ms)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffd_msg msg;
	struct uffd_copier c = { .fd = -1 };
	struct hilbox_info in;
	struct pollfd p;
	struct result r;
	pthread_t t;
	uint64_t t_fault = 0, t_done;
	size_t half, len;
	int uffd = -1;

	r_init(&r, HB_SUITE, "copy-uffd", NULL);
	c.fd = open_or_fail(&r, O_RDONLY);
	if (c.fd < 0)
		goto out;
	if (dev_info(c.fd, &in)) {
		r_fail(&r, "HILBOX_IOC_INFO: %s", strerror(errno));
		goto out_close;
	}
	len = ((size_t)in.fb_bytes + 4095) & ~(size_t)4095;
	half = (len / 2) & ~(size_t)4095;
	c.buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c.buf == MAP_FAILED) {
		r_fail(&r, "mmap: %s", strerror(errno));
		goto out_close;
	}
	memset(c.buf, 0, half);		/* present: the copy gets that far */
	c.len = in.fb_bytes;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		r_fail(&r, "userfaultfd: %s", strerror(errno));
		goto out_unmap;
	}
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)c.buf + half;
	reg.range.len = len - half;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		r_fail(&r, "UFFDIO_REGISTER: %s", strerror(errno));
		goto out_unmap;
	}
	if (pthread_create(&t, NULL, uffd_copy_thread, &c)) {
		r_fail(&r, "pthread_create failed");
		goto out_unmap;
	}
	p.fd = uffd;
	p.events = POLLIN;
	if (poll(&p, 1, 20000) == 1 && read(uffd, &msg, sizeof(msg)) == (ssize_t)sizeof(msg) &&
	    msg.event == UFFD_EVENT_PAGEFAULT) {
		t_fault = now_ns();
		dbg("blocked: COPY_FRAME faulted at buffer offset %llu",
		    (unsigned long long)(msg.arg.pagefault.address - (uintptr_t)c.buf));
		r_dnum(&r, "fault_offset", (double)(msg.arg.pagefault.address - (uintptr_t)c.buf));
		sleep_ms(hold_ms);
	} else {
		r_fail(&r, "the copy never faulted on the userfaultfd range");
	}
	close(uffd);	/* wakes the fault: it completes without the userfaultfd */
	uffd = -1;
	pthread_join(t, NULL);
	t_done = now_ns();
	r_dstr(&r, "copy_errno", c.err ? errname(c.err) : "OK");
	if (t_fault)
		r_dnum(&r, "released_to_return_ms", (double)(t_done - t_fault) / 1e6 - hold_ms);
out_unmap:
	if (uffd >= 0)
		close(uffd);
	munmap(c.buf, len);
out_close:
	close(c.fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */

int hardening_command(const char *cmd, int argc, char **argv, int i)
{
	int left = argc - i;

	if (!strcmp(cmd, "_hb-nb-race")) {
		if (left < 2)
			return 2;
		cmd_nb_race(atof(argv[i]), (unsigned int)atoi(argv[i + 1]));
	} else if (!strcmp(cmd, "_hb-efault-race")) {
		if (left < 1)
			return 2;
		cmd_efault_race(strtoull(argv[i], NULL, 0));
	} else if (!strcmp(cmd, "_hb-first-event")) {
		cmd_first_event();
	} else if (!strcmp(cmd, "_hb-drain-reader")) {
		if (left < 3)
			return 2;
		cmd_drain_reader(strtoull(argv[i], NULL, 0), atoi(argv[i + 1]),
				 (unsigned int)atoi(argv[i + 2]));
	} else if (!strcmp(cmd, "_hb-open-close")) {
		if (left < 2)
			return 2;
		cmd_open_close((unsigned int)strtoul(argv[i], NULL, 0),
			       (unsigned int)atoi(argv[i + 1]));
	} else if (!strcmp(cmd, "_hb-uring-pending")) {
		if (left < 1)
			return 2;
		cmd_uring_pending((unsigned int)atoi(argv[i]));
	} else if (!strcmp(cmd, "_hb-copy-uffd")) {
		if (left < 1)
			return 2;
		cmd_copy_uffd((unsigned int)atoi(argv[i]));
	} else {
		return -1;
	}
	return g_failed;
}
