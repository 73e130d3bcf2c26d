// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * events.c - the Linux probe's event records: raw io_uring (no liburing),
 * poll + read, and the events-throughput modes:
 *   uring     N IORING_OP_READs pending (poll-driven), re-queued as they complete
 *   uring-wq  the same with IOSQE_ASYNC (io-wq workers)
 *   poll      O_NONBLOCK + poll() + read()
 *   blocking  N threads in read()
 *   ring      the shared-memory ring (evring.c)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "probe_linux.h"

/* ------------------------------------------------------------------ */
/* raw io_uring                                                        */

int uring_init(struct uring *u, unsigned int entries)
{
	struct io_uring_params p;

	memset(u, 0, sizeof(*u));
	memset(&p, 0, sizeof(p));
	u->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
	if (u->fd < 0)
		return -errno;
	u->sq_entries = p.sq_entries;
	u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (u->cq_len > u->sq_len)
			u->sq_len = u->cq_len;
		u->cq_len = u->sq_len;
	}
	u->sq_ptr = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
	if (u->sq_ptr == MAP_FAILED)
		goto fail;
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		u->cq_ptr = u->sq_ptr;
	} else {
		u->cq_ptr = mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, u->fd,
				 IORING_OFF_CQ_RING);
		if (u->cq_ptr == MAP_FAILED)
			goto fail;
	}
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED)
		goto fail;
	u->sq_head = (unsigned int *)((char *)u->sq_ptr + p.sq_off.head);
	u->sq_tail = (unsigned int *)((char *)u->sq_ptr + p.sq_off.tail);
	u->sq_mask = (unsigned int *)((char *)u->sq_ptr + p.sq_off.ring_mask);
	u->sq_array = (unsigned int *)((char *)u->sq_ptr + p.sq_off.array);
	u->cq_head = (unsigned int *)((char *)u->cq_ptr + p.cq_off.head);
	u->cq_tail = (unsigned int *)((char *)u->cq_ptr + p.cq_off.tail);
	u->cq_mask = (unsigned int *)((char *)u->cq_ptr + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)u->cq_ptr + p.cq_off.cqes);
	return 0;
fail:
	close(u->fd);
	u->fd = -1;
	return -ENOMEM;
}

void uring_exit(struct uring *u)
{
	if (u->fd < 0)
		return;
	munmap(u->sqes, u->sqes_len);
	if (u->cq_ptr != u->sq_ptr)
		munmap(u->cq_ptr, u->cq_len);
	munmap(u->sq_ptr, u->sq_len);
	close(u->fd);
	u->fd = -1;
}

int uring_queue_read(struct uring *u, int fd, void *buf, unsigned int len,
			    uint64_t user_data, uint8_t sqe_flags)
{
	unsigned int tail = *u->sq_tail;
	unsigned int head = __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	unsigned int idx;
	struct io_uring_sqe *sqe;

	if (tail - head >= u->sq_entries)
		return -EBUSY;
	idx = tail & *u->sq_mask;
	sqe = &u->sqes[idx];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_READ;
	sqe->fd = fd;
	sqe->flags = sqe_flags;
	sqe->off = (uint64_t)-1;	/* stream: current position */
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->user_data = user_data;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	u->to_submit++;
	return 0;
}

int uring_submit(struct uring *u)
{
	int ret;

	while (u->to_submit) {
		ret = (int)syscall(__NR_io_uring_enter, u->fd, u->to_submit, 0,
				   0, NULL, 0);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		u->to_submit -= (unsigned int)ret;
		if (!ret)
			break;
	}
	return 0;
}

int uring_reap(struct uring *u, struct io_uring_cqe *out, int max,
		      int timeout_ms)
{
	unsigned int head = *u->cq_head, tail;
	int n = 0;

	tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	if (head == tail && timeout_ms) {
		struct pollfd pfd = { .fd = u->fd, .events = POLLIN };

		poll(&pfd, 1, timeout_ms);
		tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
	}
	while (head != tail && n < max) {
		out[n++] = u->cqes[head & *u->cq_mask];
		head++;
	}
	__atomic_store_n(u->cq_head, head, __ATOMIC_RELEASE);
	return n;
}

/* ------------------------------------------------------------------ */
/* read()                                                              */

os_err os_read(os_handle h, void *buf, size_t len, unsigned int timeout_ms, size_t *got)
{
	struct pollfd p = { .fd = (int)h, .events = POLLIN };
	ssize_t n;

	*got = 0;
	if (poll(&p, 1, (int)timeout_ms) <= 0)
		return OS_ETIMEOUT;
	n = read((int)h, buf, len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? OS_ETIMEOUT : (os_err)errno;
	*got = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* events-throughput                                                   */

const char *os_ev_mode(const char *mode, bool *async)
{
	*async = !strcmp(mode, "poll");
	return mode;
}

static enum ev_outcome ev_uring(struct ev_run *run, bool wq)
{
	struct ev_acc *a = run->a;
	uint8_t sqflags = wq ? IOSQE_ASYNC : 0;
	unsigned int rr = run->read_records, len = rr * EV_SZ, j;
	struct hilbox_event *bufs = calloc((size_t)run->pending * rr, EV_SZ);
	struct io_uring_cqe cqes[64];
	struct uring u;
	unsigned int i, pending = run->pending;
	int fd = (int)run->h, n, k, ret;
	uint64_t clk;

	ret = bufs ? uring_init(&u, pending < 4096 ? pending * 2 : 8192) : -ENOMEM;
	if (ret) {
		if (ret == -ENOSYS || ret == -EPERM)
			r_skip(run->r, "io_uring unavailable: %s", strerror(-ret));
		else
			r_fail(run->r, "io_uring_setup: %s", strerror(-ret));
		free(bufs);
		return EV_ABORT;
	}
	for (i = 0; i < pending; i++)
		if (uring_queue_read(&u, fd, &bufs[(size_t)i * rr], len, i, sqflags))
			break;
	uring_submit(&u);
	while (now_ns() < run->deadline) {
		n = uring_reap(&u, cqes, 64, 100);
		if (!n)
			continue;
		clk = 0;
		dev_clock(fd, &clk);	/* time of receipt */
		for (k = 0; k < n; k++) {
			i = (unsigned int)cqes[k].user_data;
			if (cqes[k].res > 0 && cqes[k].res % (int)EV_SZ == 0) {
				for (j = 0; j < (unsigned int)cqes[k].res / EV_SZ; j++)
					acc_add(a, &bufs[(size_t)i * rr + j], clk);
				acc_completion(a, &bufs[(size_t)i * rr + j - 1]);
			} else if (cqes[k].res == -EAGAIN) {
				a->retries++;	/* an io-wq worker's read: no record, issue again */
			} else {
				a->errors++;
			}
			if (cqes[k].res < 0 && cqes[k].res != -EAGAIN && a->errors < 4)
				dbg("uring read: %s", strerror(-cqes[k].res));
			if (cqes[k].res < 0 && cqes[k].res != -EINTR &&
			    cqes[k].res != -EAGAIN && a->errors > 100)
				continue;	/* give up on this slot */
			uring_queue_read(&u, fd, &bufs[(size_t)i * rr], len, i, sqflags);
		}
		uring_submit(&u);
	}
	uring_exit(&u);	/* cancels what is still pending */
	free(bufs);
	return EV_REPORT;
}

static enum ev_outcome ev_poll(struct ev_run *run)
{
	struct ev_acc *a = run->a;
	struct hilbox_event ev[16];
	size_t want = run->read_records;
	int fd = (int)run->h, i;
	uint64_t clk;
	ssize_t n;

	while (now_ns() < run->deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, ev, want * EV_SZ);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				a->errors++;
			continue;
		}
		clk = 0;
		dev_clock(fd, &clk);
		for (i = 0; i < n / (ssize_t)EV_SZ; i++)
			acc_add(a, &ev[i], clk);
		acc_completion(a, &ev[i - 1]);
	}
	return EV_REPORT;
}

struct bl_thread {
	pthread_t th;
	int fd;
	uint64_t deadline;
	struct ev_acc acc;	/* per thread: in-order per reader */
	uint64_t *seqs;
	size_t seqs_n, seqs_cap;
	int err;
};

static volatile int g_stop;

static void on_usr1(int sig)
{
	(void)sig;
}

static void *bl_reader(void *arg)
{
	struct bl_thread *t = arg;
	struct hilbox_event e;
	uint64_t clk;
	ssize_t n;

	while (!g_stop && now_ns() < t->deadline) {
		n = read(t->fd, &e, sizeof(e));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			t->err = errno;
			break;
		}
		if (n != (ssize_t)EV_SZ) {
			t->err = EIO;
			break;
		}
		clk = 0;
		dev_clock(t->fd, &clk);
		acc_completion(&t->acc, &e);
		acc_add(&t->acc, &e, clk);
		if (t->seqs_n < t->seqs_cap)
			t->seqs[t->seqs_n++] = e.seq;
	}
	return NULL;
}

static enum ev_outcome ev_blocking(struct ev_run *run)
{
	struct ev_acc *a = run->a;
	unsigned int pending = run->pending;
	struct bl_thread *t = calloc(pending, sizeof(*t));
	struct sigaction sa;
	unsigned int i, started = 0;
	size_t j;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;	/* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	g_stop = 0;
	for (i = 0; t && i < pending; i++) {
		t[i].fd = (int)run->h;
		t[i].deadline = run->deadline;
		t[i].seqs_cap = run->cap / pending + 64;
		t[i].seqs = calloc(t[i].seqs_cap, sizeof(uint64_t));
		t[i].acc.lat_cap = t[i].seqs_cap;
		t[i].acc.lat = calloc(t[i].seqs_cap, sizeof(uint64_t));
		if (!t[i].seqs || !t[i].acc.lat ||
		    pthread_create(&t[i].th, NULL, bl_reader, &t[i]))
			break;
		started++;
	}
	while (now_ns() < run->deadline)
		sleep_ms(20);
	g_stop = 1;
	for (i = 0; i < started; i++)
		pthread_kill(t[i].th, SIGUSR1);
	for (i = 0; i < started; i++)
		pthread_join(t[i].th, NULL);
	/* per reader order, then global: every seq exactly once */
	for (i = 0; i < started; i++) {
		a->order_viol += t[i].acc.order_viol + t[i].acc.dup;
		a->errors += t[i].err ? 1 : 0;
		a->n += t[i].seqs_n;
		a->completions += t[i].acc.completions;
		a->split += t[i].acc.split;
		for (j = 0; j < t[i].seqs_n && a->seqs_n < a->seqs_cap; j++)
			a->seqs[a->seqs_n++] = t[i].seqs[j];
		for (j = 0; j < t[i].acc.lat_n && a->lat_n < a->lat_cap; j++)
			a->lat[a->lat_n++] = t[i].acc.lat[j];
	}
	for (i = 0; t && i < pending; i++) {
		free(t[i].seqs);
		free(t[i].acc.lat);
	}
	free(t);
	if (started < pending)
		r_fail(run->r, "started only %u of %u reader threads", started, pending);
	return EV_REPORT;
}

enum ev_outcome os_ev_run(struct ev_run *run, const char *mode)
{
	/* uring/poll: completion order; blocking: per reader order */
	run->ordered = strcmp(mode, "uring-wq") != 0;
	if (!strcmp(mode, "uring") || !strcmp(mode, "uring-wq"))
		return ev_uring(run, !strcmp(mode, "uring-wq"));
	if (!strcmp(mode, "poll"))
		return ev_poll(run);
	if (!strcmp(mode, "blocking"))
		return ev_blocking(run);
	if (!strcmp(mode, "ring"))
		return ev_ring(run);
	dbg("unknown mode %s", mode);
	return EV_USAGE;
}
