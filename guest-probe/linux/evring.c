// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * evring.c - the shared-memory event ring (guest-driver/INTERFACE.md 3b):
 * attaching and mapping it, the events-throughput mode `ring`, and its
 * security cases (writes through the ring mapping, fork, a descriptor passed
 * to an unprivileged process, bad set-ups).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "probe_linux.h"

#define RING_RECORDS	4096u	/* events-throughput: 0.5 s at 8 kHz */
#define CASE_RECORDS	64u	/* the security cases */

int evring_attach(int fd, unsigned int records, struct evring *er)
{
	struct hilbox_ev_ring_setup rs;
	void *p;
	int e;

	memset(er, 0, sizeof(*er));
	er->fd = -1;
	memset(&rs, 0, sizeof(rs));
	rs.records = records;
	if (ioctl(fd, HILBOX_IOC_EV_RING, &rs))
		return -errno;
	p = mmap(NULL, (size_t)rs.mmap_bytes, PROT_READ, MAP_SHARED, fd, (off_t)rs.mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	er->fd = fd;
	er->hdr = p;
	er->bytes = (size_t)rs.mmap_bytes;
	er->slots = (const struct hilbox_ev_slot *)((const char *)p + er->hdr->slots_offset);
	er->mask = er->hdr->records - 1;
	er->head = 0;
	e = 0;
	if (er->hdr->magic != HILBOX_EV_RING_MAGIC || er->hdr->records != records ||
	    er->hdr->slot_size != sizeof(struct hilbox_ev_slot))
		e = -EPROTO;
	if (e)
		evring_detach(er);
	return e;
}

void evring_detach(struct evring *er)
{
	if (er->hdr)
		munmap(er->hdr, er->bytes);
	er->hdr = NULL;
}

int evring_wait(struct evring *er, unsigned int timeout_ms)
{
	struct hilbox_ev_ring_wait w;

	memset(&w, 0, sizeof(w));
	w.head = er->head;
	w.timeout_ms = timeout_ms;
	return ioctl(er->fd, HILBOX_IOC_EV_RING_WAIT, &w) ? -errno : 0;
}

static uint64_t ring_tail(const struct evring *er)
{
	return __atomic_load_n(&er->hdr->tail, __ATOMIC_ACQUIRE);
}

/*
 * Copies position p; false when the slot holds another position (the ring
 * reused it: only if the consumer released what it had not read).
 */
static bool ring_copy(const struct evring *er, uint64_t p, struct hilbox_event *e)
{
	const struct hilbox_ev_slot *s = &er->slots[p & er->mask];
	uint64_t pos = __atomic_load_n(&s->pos, __ATOMIC_ACQUIRE);

	memcpy(e, &s->ev, sizeof(*e));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return pos == p && __atomic_load_n(&s->pos, __ATOMIC_RELAXED) == p;
}

/* ------------------------------------------------------------------ */
/* events-throughput --mode ring                                       */

enum ev_outcome ev_ring(struct ev_run *run)
{
	struct ev_acc *a = run->a;
	struct hilbox_event e;
	struct evring er;
	uint64_t t, p, clk;
	int fd = (int)run->h, ret;

	if (!(run->in->drv_flags & HILBOX_DRV_EV_RING)) {
		r_skip(run->r, "the driver offers no shared-memory ring (HILBOX_DRV_EV_RING)");
		return EV_ABORT;
	}
	ret = evring_attach(fd, RING_RECORDS, &er);
	if (ret) {
		r_fail(run->r, "EV_RING + mmap: %s", strerror(-ret));
		return EV_ABORT;
	}
	r_dnum(run->r, "ring_records", RING_RECORDS);
	while (now_ns() < run->deadline) {
		ret = evring_wait(&er, 100);	/* releases [.., head), waits */
		if (ret) {
			if (ret != -EINTR)
				a->errors++;
			if (a->errors > 100)
				break;
			continue;
		}
		t = ring_tail(&er);
		if (t == er.head)
			continue;
		clk = 0;
		dev_clock(fd, &clk);	/* time of receipt */
		for (p = er.head; p != t; p++) {
			if (ring_copy(&er, p, &e))
				acc_add(a, &e, clk);
			else
				a->errors++;
		}
		acc_completion(a, &e);
		er.head = t;
	}
	r_metric(run->r, "ring_dropped", (double)er.hdr->dropped, "events");
	r_metric(run->r, "ring_wakeups", (double)er.hdr->wakeups, "wakeups");
	evring_detach(&er);
	return EV_REPORT;
}

/* ------------------------------------------------------------------ */
/* security cases                                                      */

static bool has_ring(struct result *r, struct sec_ctx *c)
{
	if (c->in.drv_flags & HILBOX_DRV_EV_RING)
		return true;
	r_skip(r, "the driver offers no shared-memory ring (HILBOX_DRV_EV_RING)");
	return false;
}

static void expect_errno(struct result *r, const char *key, int ret, int want)
{
	r_dstr(r, key, ret ? errname(-ret) : "OK");
	if (ret != -want)
		r_fail(r, "%s: %s, expected %s", key, ret ? errname(-ret) : "success",
		       errname(want));
}

static int ioc(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

/* a snapshot of the header as the driver wrote it */
static bool hdr_intact(const struct evring *er)
{
	return er->hdr->magic == HILBOX_EV_RING_MAGIC &&
	       er->hdr->version == HILBOX_EV_RING_VERSION &&
	       er->hdr->records == CASE_RECORDS;
}

/* --- ring-write-through-mapping --- */

void sec_ring_write(struct result *r, struct sec_ctx *c)
{
	struct evring er;
	struct iovec lio, rio;
	uint8_t v = 0x5a;
	void *w;
	int ret, sig, mfd;
	ssize_t n;

	if (!has_ring(r, c))
		return;
	ret = evring_attach(CFD(c), CASE_RECORDS, &er);
	if (ret) {
		r_fail(r, "EV_RING + mmap: %s", strerror(-ret));
		return;
	}
	sig = touch_in_child((const volatile uint8_t *)er.hdr, true);
	r_dstr(r, "child_signal_header", signame(sig));
	if (sig != SIGSEGV && sig != SIGBUS)
		r_fail(r, "a child writing the ring header was not killed (%s)", signame(sig));
	sig = touch_in_child((const volatile uint8_t *)er.slots, true);
	r_dstr(r, "child_signal_slot", signame(sig));
	if (sig != SIGSEGV && sig != SIGBUS)
		r_fail(r, "a child writing a ring slot was not killed (%s)", signame(sig));
	sig = touch_in_child((const volatile uint8_t *)er.hdr, false);
	if (sig)
		r_fail(r, "reading the ring in a child died with %s", signame(sig));

	ret = mprotect(er.hdr, er.bytes, PROT_READ | PROT_WRITE) ? -errno : 0;
	expect_errno(r, "mprotect_write", ret, EACCES);
	ret = mprotect(er.hdr, er.bytes, PROT_READ | PROT_EXEC) ? -errno : 0;
	expect_errno(r, "mprotect_exec", ret, EACCES);

	w = mmap(NULL, er.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, CFD(c),
		 (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	ret = w == MAP_FAILED ? -errno : 0;
	if (w != MAP_FAILED)
		munmap(w, er.bytes);
	expect_errno(r, "map_prot_write", ret, EACCES);
	w = mmap(NULL, er.bytes, PROT_READ, MAP_PRIVATE, CFD(c), (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	ret = w == MAP_FAILED ? -errno : 0;
	if (w != MAP_FAILED)
		munmap(w, er.bytes);
	expect_errno(r, "map_private", ret, EINVAL);
	w = mremap(er.hdr, er.bytes, er.bytes * 2, 0);
	r_dstr(r, "mremap_grow", w == MAP_FAILED ? errname(errno) : "OK");
	if (w != MAP_FAILED)
		r_fail(r, "mremap grew the ring mapping");

	mfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mfd >= 0) {
		n = pwrite(mfd, &v, 1, (off_t)(uintptr_t)er.hdr);
		r_dstr(r, "proc_self_mem_write", n == 1 ? "OK" : errname(errno));
		if (n == 1)
			r_fail(r, "/proc/self/mem wrote into the ring");
		close(mfd);
	}
	lio.iov_base = &v;
	lio.iov_len = 1;
	rio.iov_base = er.hdr;
	rio.iov_len = 1;
	n = process_vm_writev(getpid(), &lio, 1, &rio, 1, 0);
	r_dstr(r, "process_vm_writev", n == 1 ? "OK" : errname(errno));
	if (n == 1)
		r_fail(r, "process_vm_writev wrote into the ring");
	if (!hdr_intact(&er))
		r_fail(r, "the ring header changed: magic %#x records %u",
		       er.hdr->magic, er.hdr->records);
	evring_detach(&er);
}

/* --- ring-fork --- */

struct fork_arg {
	struct evring *er;
	int fd;
};

static void ch_ring_fork(void *arg, struct child_msg *m)
{
	struct fork_arg *fa = arg;
	struct hilbox_ev_ring_setup rs;
	int ret;

	/* the inherited mapping reads the same header */
	if (!hdr_intact(fa->er))
		cm_fail(m, "the child's inherited ring mapping does not show the header");
	cm_detail(m, "inherited_magic:%#x", fa->er->hdr->magic);
	/* the device has one ring: the child cannot make a second */
	memset(&rs, 0, sizeof(rs));
	rs.records = CASE_RECORDS;
	ret = ioc(fa->fd, HILBOX_IOC_EV_RING, &rs);
	cm_detail(m, "second_ring:%s", ret ? errname(-ret) : "OK");
	if (ret != -EBUSY)
		cm_fail(m, "a second EV_RING on the inherited fd: %s, expected EBUSY",
			ret ? errname(-ret) : "success");
	/* a write through the inherited mapping kills only the writer */
	ret = touch_in_child((const volatile uint8_t *)fa->er->slots, true);
	cm_detail(m, "grandchild_write:%s", signame(ret));
	if (ret != SIGSEGV && ret != SIGBUS)
		cm_fail(m, "a write through the inherited ring mapping did not fault (%s)",
			signame(ret));
}

void sec_ring_fork(struct result *r, struct sec_ctx *c)
{
	struct fork_arg fa;
	struct child_msg m;
	struct evring er;
	struct hilbox_event e;
	uint64_t t, p, deadline, got = 0, bad = 0, last = 0, disorder = 0;
	int ret, st = 0;

	if (!has_ring(r, c))
		return;
	ret = evring_attach(CFD(c), CASE_RECORDS, &er);
	if (ret) {
		r_fail(r, "EV_RING + mmap: %s", strerror(-ret));
		return;
	}
	fa.er = &er;
	fa.fd = CFD(c);
	ret = run_child(ch_ring_fork, &fa, false, 15000, &m, &st);
	child_into(r, ret, &m);
	/* the parent's ring still works: records arrive in sequence order */
	os_set_events(c->h, 1, HILBOX_EVCTL_FLUSH);
	deadline = now_ns() + (c->in.ev_rate_hz ? 3000000000ull : 0);
	while (got < 50 && now_ns() < deadline) {
		if (evring_wait(&er, 200))
			break;
		t = ring_tail(&er);
		for (p = er.head; p != t; p++) {
			if (!ring_copy(&er, p, &e)) {
				bad++;
				continue;
			}
			if (got++ && e.seq <= last)
				disorder++;
			last = e.seq;
		}
		er.head = t;
	}
	os_set_events(c->h, 0, 0);
	r_metric(r, "records_after_fork", (double)got, "records");
	if (c->in.ev_rate_hz && got < 50)
		r_fail(r, "only %llu records through the ring after the child", (unsigned long long)got);
	if (bad || disorder)
		r_fail(r, "ring records after fork: %llu slots inconsistent, %llu out of order",
		       (unsigned long long)bad, (unsigned long long)disorder);
	evring_detach(&er);
}

/* --- ring-passed-handle --- */

struct pass_arg {
	int sock, close1;
};

static void ch_ring_passed(void *arg, struct child_msg *m)
{
	struct pass_arg *pa = arg;
	struct hilbox_ev_ring_wait w;
	struct hilbox_ev_ring_hdr *h;
	void *p;
	int fd = -1, ret;

	close(pa->close1);	/* only what arrives over the socket */
	fd = fd_recv(pa->sock);
	if (fd < 0) {
		cm_fail(m, "no descriptor received: %s", strerror(-fd));
		return;
	}
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	cm_detail(m, "partial_map:%s", p == MAP_FAILED ? errname(errno) : "OK");
	if (p != MAP_FAILED) {
		cm_fail(m, "a mapping shorter than the ring was accepted");
		munmap(p, 4096);
	}
	/* the header page and 64 slots of 32 bytes fit in two pages */
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	if (p == MAP_FAILED) {
		cm_fail(m, "read-only ring map by the receiver: %s", strerror(errno));
	} else {
		h = p;
		cm_detail(m, "ro_map:OK magic:%#x", h->magic);
		if (h->magic != HILBOX_EV_RING_MAGIC)
			cm_fail(m, "the receiver's ring mapping shows no header");
		if (!mprotect(p, 8192, PROT_READ | PROT_WRITE))
			cm_fail(m, "mprotect(PROT_WRITE) of the ring succeeded as uid %d", NOBODY_ID);
		else
			cm_detail(m, "mprotect_write:%s", errname(errno));
		ret = touch_in_child((const volatile uint8_t *)p, true);
		cm_detail(m, "write:%s", signame(ret));
		if (ret != SIGSEGV && ret != SIGBUS)
			cm_fail(m, "a write through the receiver's ring mapping did not fault");
		munmap(p, 8192);
	}
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	cm_detail(m, "rw_map:%s", p == MAP_FAILED ? errname(errno) : "OK");
	if (p != MAP_FAILED) {
		cm_fail(m, "writable ring mapping from a received fd");
		munmap(p, 8192);
	}
	/* a head past the tail is refused */
	memset(&w, 0, sizeof(w));
	w.head = 1ull << 40;
	ret = ioc(fd, HILBOX_IOC_EV_RING_WAIT, &w);
	cm_detail(m, "head_past_tail:%s", ret ? errname(-ret) : "OK");
	if (ret != -EINVAL)
		cm_fail(m, "EV_RING_WAIT with a head past the tail: %s, expected EINVAL",
			ret ? errname(-ret) : "success");
	close(fd);
}

void sec_ring_passed(struct result *r, struct sec_ctx *c)
{
	struct pass_arg pa;
	struct child_msg m;
	struct evring er;
	int sv[2], fd, ret, st = 0;

	if (!has_ring(r, c))
		return;
	fd = dev_open(O_RDONLY);
	if (fd < 0) {
		r_fail(r, "open: %s", strerror(-fd));
		return;
	}
	ret = evring_attach(fd, CASE_RECORDS, &er);
	if (ret) {
		r_fail(r, "EV_RING + mmap: %s", strerror(-ret));
		close(fd);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		r_fail(r, "socketpair: %s", strerror(errno));
		goto out;
	}
	/* the descriptor in flight before the receiver exists; it closes its inherited copy */
	ret = fd_send(sv[0], fd);
	if (ret) {
		r_fail(r, "sendmsg: %s", strerror(-ret));
	} else {
		pa.sock = sv[1];
		pa.close1 = fd;
		ret = run_child(ch_ring_passed, &pa, true, 15000, &m, &st);
		child_into(r, ret, &m);
	}
	close(sv[0]);
	close(sv[1]);
	if (!hdr_intact(&er))
		r_fail(r, "the ring header changed under the receiver");
out:
	evring_detach(&er);
	close(fd);
}

/* --- ring-bad-setup --- */

void sec_ring_bad_setup(struct result *r, struct sec_ctx *c)
{
	static const unsigned int bad_records[] = { 0, 1, 32, 63, 100, 65537, 131072 };
	struct hilbox_ev_ring_setup rs;
	struct hilbox_ev_ring_wait w;
	struct evring er;
	char key[48];
	size_t i;
	void *p;
	int ret;

	if (!has_ring(r, c))
		return;
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, CFD(c), (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	ret = p == MAP_FAILED ? -errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 8192);
	expect_errno(r, "map_before_setup", ret, EINVAL);
	memset(&w, 0, sizeof(w));
	expect_errno(r, "wait_without_ring", ioc(CFD(c), HILBOX_IOC_EV_RING_WAIT, &w), EINVAL);
	for (i = 0; i < sizeof(bad_records) / sizeof(bad_records[0]); i++) {
		memset(&rs, 0, sizeof(rs));
		rs.records = bad_records[i];
		snprintf(key, sizeof(key), "records_%u", bad_records[i]);
		expect_errno(r, key, ioc(CFD(c), HILBOX_IOC_EV_RING, &rs), EINVAL);
	}
	memset(&rs, 0, sizeof(rs));
	rs.records = CASE_RECORDS;
	rs.flags = 1;
	expect_errno(r, "flags", ioc(CFD(c), HILBOX_IOC_EV_RING, &rs), EINVAL);
	rs.flags = 0;
	rs.reserved[2] = 1;
	expect_errno(r, "reserved", ioc(CFD(c), HILBOX_IOC_EV_RING, &rs), EINVAL);
	expect_errno(r, "bad_pointer", ioc(CFD(c), HILBOX_IOC_EV_RING, (void *)16), EFAULT);

	ret = evring_attach(CFD(c), CASE_RECORDS, &er);
	if (ret) {
		r_fail(r, "EV_RING + mmap: %s", strerror(-ret));
		return;
	}
	memset(&rs, 0, sizeof(rs));
	rs.records = CASE_RECORDS;
	expect_errno(r, "second_ring", ioc(CFD(c), HILBOX_IOC_EV_RING, &rs), EBUSY);
	p = mmap(NULL, er.bytes + 4096, PROT_READ, MAP_SHARED, CFD(c),
		 (off_t)HILBOX_EV_RING_MMAP_OFFSET);
	ret = p == MAP_FAILED ? -errno : 0;
	if (p != MAP_FAILED)
		munmap(p, er.bytes + 4096);
	expect_errno(r, "map_longer_than_ring", ret, EINVAL);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, CFD(c),
		 (off_t)HILBOX_EV_RING_MMAP_OFFSET + 4096);
	ret = p == MAP_FAILED ? -errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	expect_errno(r, "map_inside_ring", ret, EINVAL);
	memset(&w, 0, sizeof(w));
	w.timeout_ms = 60001;
	expect_errno(r, "wait_timeout_too_long", ioc(CFD(c), HILBOX_IOC_EV_RING_WAIT, &w), EINVAL);
	memset(&w, 0, sizeof(w));
	w.head = ~0ull;	/* "behind" the head by one, or far past the tail */
	expect_errno(r, "head_backwards", ioc(CFD(c), HILBOX_IOC_EV_RING_WAIT, &w), EINVAL);
	memset(&w, 0, sizeof(w));
	w.flags = 1;
	expect_errno(r, "wait_flags", ioc(CFD(c), HILBOX_IOC_EV_RING_WAIT, &w), EINVAL);
	if (!hdr_intact(&er))
		r_fail(r, "the ring header changed");
	evring_detach(&er);
}
