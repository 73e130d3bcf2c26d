// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * hilbox-probe - guest-side test and measurement tool for hilbox.ko.
 *
 * Prints one JSON object per line on stdout (docs/results-schema.md),
 * diagnostics on stderr.  Exit status: 0 all results pass/skip, 1 a result
 * failed, 2 usage error.  See guest-driver/INTERFACE.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/io_uring.h>

#include "hilbox_uapi.h"
#include "probe_core.h"

#define NOBODY_ID	65534
#define EV_SZ		((size_t)sizeof(struct hilbox_event))

const char *g_dev = "/dev/hilbox0";
static const char *g_self = "/proc/self/exe";

/* ------------------------------------------------------------------ */
/* small utilities                                                     */

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static const char *errname(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case EOVERFLOW: return "EOVERFLOW";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENXIO: return "ENXIO";
	case ESRCH: return "ESRCH";
	default: return "E?";
	}
}

/* ------------------------------------------------------------------ */
/* device helpers                                                      */

static int dev_open(int flags)
{
	int fd = open(g_dev, flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int dev_info(int fd, struct hilbox_info *in)
{
	memset(in, 0, sizeof(*in));
	return ioctl(fd, HILBOX_IOC_INFO, in) ? -errno : 0;
}

static int dev_stats(int fd, struct hilbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(fd, HILBOX_IOC_STATS, st) ? -errno : 0;
}

static int dev_frame_state(int fd, struct hilbox_frame_state *fs)
{
	memset(fs, 0, sizeof(*fs));
	return ioctl(fd, HILBOX_IOC_FRAME_STATE, fs) ? -errno : 0;
}

static int dev_clock(int fd, uint64_t *dev_ns)
{
	struct hilbox_clock c;

	memset(&c, 0, sizeof(c));
	if (ioctl(fd, HILBOX_IOC_CLOCK, &c))
		return -errno;
	*dev_ns = c.device_ns;
	return 0;
}

static int dev_set_events(int fd, unsigned int enable, unsigned int flags)
{
	struct hilbox_events_ctl c;

	memset(&c, 0, sizeof(c));
	c.enable = enable;
	c.flags = flags;
	return ioctl(fd, HILBOX_IOC_SET_EVENTS, &c) ? -errno : 0;
}

static int dev_copy(int fd, void *buf, size_t len, unsigned int flags,
		    unsigned int max_retries, struct hilbox_copy_frame *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->buf = (uintptr_t)buf;
	cf->buf_len = len;
	cf->flags = flags;
	cf->max_retries = max_retries;
	return ioctl(fd, HILBOX_IOC_COPY_FRAME, cf) ? -errno : 0;
}

/* open + INFO, reporting failure into r; returns fd or -1 */
static int open_checked(struct result *r, int flags, struct hilbox_info *in)
{
	int fd = dev_open(flags), ret;

	if (fd < 0) {
		if (fd == -ENOENT)
			r_skip(r, "%s does not exist (driver not loaded?)", g_dev);
		else
			r_fail(r, "open %s: %s", g_dev, strerror(-fd));
		return -1;
	}
	ret = dev_info(fd, in);
	if (ret) {
		r_fail(r, "HILBOX_IOC_INFO: %s", strerror(-ret));
		close(fd);
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------------ */
/* framebuffer copies                                                  */

/*
 * One frame from the mapping, user-space seqlock through FRAME_STATE.
 * After a failed attempt wait for the next frame to get a whole period.
 */
static int map_copy_frame(int fd, const uint8_t *fb, uint8_t *dst, size_t len,
			  enum fb_method m, bool seqlock, unsigned int max_retries,
			  uint64_t deadline, struct copy_out *o)
{
	struct hilbox_frame_state s1, s2;
	uint32_t after = 0;
	int ret;

	memset(o, 0, sizeof(*o));
	for (;;) {
		ret = dev_frame_state(fd, &s1);
		if (ret)
			return ret;
		if (seqlock && ((s1.frame_seq & 1) ||
				(o->retries && s1.frame_seq == after))) {
			if (deadline && now_ns() > deadline)
				return -ETIME;
			usleep(50);
			continue;
		}
		if (raw_copy(dst, fb, len, m, deadline))
			return -ETIME;
		ret = dev_frame_state(fd, &s2);
		if (ret)
			return ret;
		o->frame_number = s1.frame_number;
		o->seq1 = s1.frame_seq;
		o->seq2 = s2.frame_seq;
		if (!seqlock || s1.frame_seq == s2.frame_seq)
			return 0;
		if (o->retries++ >= max_retries)
			return -EAGAIN;
		after = s2.frame_seq;
	}
}

static int copy_frame_any(int fd, const uint8_t *fb, uint8_t *dst,
			  const struct hilbox_info *in, enum fb_method m,
			  bool seqlock, uint64_t deadline, struct copy_out *o)
{
	struct hilbox_copy_frame cf;
	int ret;

	if (m != M_COPY)
		return map_copy_frame(fd, fb, dst, in->fb_bytes, m, seqlock, 64,
				      deadline, o);
	ret = dev_copy(fd, dst, in->fb_bytes,
		       seqlock ? 0 : HILBOX_COPY_NO_SEQLOCK, 0, &cf);
	if (ret)
		return ret;
	o->frame_number = cf.frame_number;
	o->seq1 = cf.frame_seq;
	o->seq2 = cf.frame_seq_end;
	o->retries = cf.retries;
	return 0;
}

static const uint8_t *map_fb(int fd, const struct hilbox_info *in)
{
	void *p = mmap(NULL, in->bar2_size, PROT_READ, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------ */
/* raw io_uring                                                        */

struct uring {
	int fd;
	unsigned int sq_entries;
	unsigned int *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ptr, *cq_ptr;
	size_t sq_len, cq_len, sqes_len;
	unsigned int to_submit;
};

static int uring_init(struct uring *u, unsigned int entries)
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

static void uring_exit(struct uring *u)
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

static int uring_queue_read(struct uring *u, int fd, void *buf, unsigned int len,
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

static int uring_submit(struct uring *u)
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

/* up to max completions; waits up to timeout_ms for the first one */
static int uring_reap(struct uring *u, struct io_uring_cqe *out, int max,
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
/* child processes                                                     */

struct child_msg {
	int status;		/* 0 pass, 1 fail, 2 skip */
	char reason[400];
	char details[1200];
};

static void cm_fail(struct child_msg *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cm_fail(struct child_msg *m, const char *fmt, ...)
{
	va_list ap;

	if (m->status == 1)
		return;
	m->status = 1;
	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
}

static void cm_detail(struct child_msg *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cm_detail(struct child_msg *m, const char *fmt, ...)
{
	size_t l = strlen(m->details);
	va_list ap;

	if (l + 2 >= sizeof(m->details))
		return;
	if (l)
		m->details[l++] = ' ';
	va_start(ap, fmt);
	vsnprintf(m->details + l, sizeof(m->details) - l, fmt, ap);
	va_end(ap);
}

static int drop_privileges(void)
{
	gid_t g = NOBODY_ID;
	uid_t u = NOBODY_ID;

	if (setgroups(0, NULL) && errno != EPERM)
		return -errno;
	if (setresgid(g, g, g) || setresuid(u, u, u))
		return -errno;
	if (getuid() != u || geteuid() != u || getegid() != g)
		return -EPERM;
	/* keep /proc/self ours, so only the device's own checks refuse us */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

typedef void (*child_fn)(void *arg, struct child_msg *m);

/*
 * Run fn in a forked child (optionally as uid/gid 65534).  Returns 0 and
 * fills *m, or -ETIMEDOUT / -ECHILD when the child hung or died.
 */
static int run_child(child_fn fn, void *arg, bool unpriv, int timeout_ms,
		     struct child_msg *m, int *wstatus)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int pfd[2], st = 0, ret;
	ssize_t got = 0, r;
	pid_t pid;

	memset(m, 0, sizeof(*m));
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (!pid) {
		struct child_msg cm;
		struct rlimit rl = { 0, 0 };

		close(pfd[0]);
		setrlimit(RLIMIT_CORE, &rl);
		memset(&cm, 0, sizeof(cm));
		if (unpriv && drop_privileges()) {
			cm.status = 2;
			snprintf(cm.reason, sizeof(cm.reason),
				 "cannot drop privileges to %d", NOBODY_ID);
		} else {
			fn(arg, &cm);
		}
		if (write(pfd[1], &cm, sizeof(cm)) < 0)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	while (got < (ssize_t)sizeof(*m)) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int left = (int)(((int64_t)deadline - (int64_t)now_ns()) / 1000000);

		if (left <= 0)
			break;
		if (poll(&p, 1, left) <= 0)
			continue;
		r = read(pfd[0], (char *)m + got, sizeof(*m) - (size_t)got);
		if (r <= 0)
			break;
		got += r;
	}
	close(pfd[0]);
	if (got < (ssize_t)sizeof(*m)) {
		if (waitpid(pid, &st, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			if (wstatus)
				*wstatus = st;
			return -ETIMEDOUT;
		}
		if (wstatus)
			*wstatus = st;
		return -ECHILD;
	}
	waitpid(pid, &st, 0);
	if (wstatus)
		*wstatus = st;
	return 0;
}

/* report a child's outcome into r */
static void child_into(struct result *r, int ret, struct child_msg *m)
{
	if (ret == -ETIMEDOUT) {
		r_fail(r, "child process timed out");
		return;
	}
	if (ret) {
		r_fail(r, "child process died before reporting (%s)",
		       strerror(-ret));
		return;
	}
	if (m->details[0])
		r_dstr(r, "child", m->details);
	if (m->status == 1)
		r_fail(r, "%s", m->reason);
	else if (m->status == 2)
		r_skip(r, "%s", m->reason);
}

static void on_fault_exit(int sig)
{
	_exit(100 + sig);
}

/*
 * Fork a child that touches *p; returns the signal that stopped it, 0 =
 * none.  The child catches SIGSEGV/SIGBUS itself so the kernel log stays
 * free of "segfault at" lines.
 */
static int touch_in_child(const volatile uint8_t *p, bool write)
{
	int st = 0;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_fault_exit;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		alarm(10);
		if (write)
			*(volatile uint8_t *)p = 0x5a;
		else
			(void)*p;
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (WIFSIGNALED(st))
		return WTERMSIG(st);
	if (WIFEXITED(st) && WEXITSTATUS(st) > 100)
		return WEXITSTATUS(st) - 100;
	return 0;
}

static const char *signame(int sig)
{
	switch (sig) {
	case 0: return "none";
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGKILL: return "SIGKILL";
	case SIGALRM: return "SIGALRM";
	default: return "other";
	}
}

/* ------------------------------------------------------------------ */
/* info                                                                */

static int cmd_info(void)
{
	struct hilbox_info in;
	struct hilbox_stats st;
	struct result r;
	uint64_t clk = 0;
	int fd;

	r_init(&r, "info", "device-info", NULL);
	fd = open_checked(&r, O_RDONLY, &in);
	if (fd >= 0) {
		bool have_st = !dev_stats(fd, &st), have_clk = !dev_clock(fd, &clk);

		info_report(&r, &in, have_st ? &st : NULL, have_clk ? &clk : NULL);
		close(fd);
	}
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* verify-frames                                                       */

static int wait_new_frame(int fd, uint64_t last, uint64_t deadline,
			  uint64_t *cur)
{
	struct hilbox_frame_state fs;
	int ret;

	for (;;) {
		ret = dev_frame_state(fd, &fs);
		if (ret)
			return ret;
		if (!(fs.frame_seq & 1) && (fs.frame_number != last ||
					    last == UINT64_MAX)) {
			*cur = fs.frame_number;
			return 0;
		}
		if (now_ns() > deadline)
			return -ETIME;
		sleep_ms(1);
	}
}

static void verify_method(struct result *r, int fd, const uint8_t *fb,
			  const struct hilbox_info *in, enum fb_method m,
			  unsigned int frames, uint64_t deadline)
{
	uint8_t *buf = malloc(in->fb_bytes);
	struct verify_tot t = { .t0 = now_ns() };
	uint64_t last = UINT64_MAX, cur;
	struct verify_res v;
	struct copy_out o;
	unsigned int i;
	int ret;

	if (!buf) {
		r_fail(r, "out of memory");
		return;
	}
	for (i = 0; i < frames; i++) {
		ret = wait_new_frame(fd, last, deadline, &cur);
		if (!ret)
			ret = copy_frame_any(fd, fb, buf, in, m, true, deadline, &o);
		if (ret) {
			r_fail(r, "%s: frame %u of %u: %s", method_name[m], i,
			       frames, ret == -ETIME ? "timed out" : strerror(-ret));
			break;
		}
		t.retries += o.retries;
		if (o.frame_number == last) {	/* raced: same frame again */
			i--;
			continue;
		}
		last = o.frame_number;
		if (verify_tally(&t, buf, in, o.frame_number, &v))
			dbg("%s: frame %llu: %llu bad pixels (%llu of another frame), %llu bad padding bytes",
			    method_name[m], (unsigned long long)o.frame_number,
			    (unsigned long long)v.bad_px,
			    (unsigned long long)v.other_px,
			    (unsigned long long)v.bad_pad);
	}
	verify_report(r, method_name[m], &t);
	free(buf);
}

static int cmd_verify_frames(unsigned int frames, const char *method,
			     unsigned int timeout_s)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ull;
	const uint8_t *fb = NULL;
	struct hilbox_info in;
	struct result r;
	bool do_copy = strcmp(method, "map") != 0;
	bool do_map = strcmp(method, "copy") != 0;
	int fd;

	r_init(&r, "verify", "verify-frames", NULL);
	fd = open_checked(&r, O_RDONLY, &in);
	if (fd < 0)
		goto out;
	info_into(&r, &in);
	r_dnum(&r, "frames_requested", frames);
	fb = map_fb(fd, &in);
	if (!fb) {
		r_fail(&r, "mmap of BAR2 (%llu bytes): %s",
		       (unsigned long long)in.bar2_size, strerror(errno));
		goto out_close;
	}
	/* bytes of BAR2 past FB_BYTES read as 0 (SPEC 4.2) */
	bar2_tail_check(&r, fb, &in);
	if (do_copy)
		verify_method(&r, fd, fb, &in, M_COPY, frames, deadline);
	if (do_map)
		verify_method(&r, fd, fb, &in, M_MAP, frames, deadline);
	munmap((void *)fb, in.bar2_size);
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* dump-frame                                                          */

static int cmd_dump_frame(const char *out)
{
	struct hilbox_copy_frame cf;
	struct hilbox_info in;
	struct result r;
	char *metapath = NULL;
	uint8_t *buf = NULL;
	FILE *f = NULL;
	int fd, ret;

	r_init(&r, "verify", "dump-frame", NULL);
	fd = open_checked(&r, O_RDONLY, &in);
	if (fd < 0)
		goto out;
	buf = malloc(in.fb_bytes);
	if (!buf) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	ret = dev_copy(fd, buf, in.fb_bytes, 0, 256, &cf);
	if (ret) {
		r_fail(&r, "HILBOX_IOC_COPY_FRAME: %s", strerror(-ret));
		goto out_close;
	}
	dump_verify(&r, buf, &in, &cf);
	f = fopen(out, "wb");
	if (!f) {
		r_fail(&r, "cannot create %s: %s", out, strerror(errno));
		goto out_close;
	}
	if (!dump_rows(f, buf, &in)) {
		r_fail(&r, "write %s failed", out);
		goto out_close;
	}
	if (asprintf(&metapath, "%s.json", out) < 0) {
		metapath = NULL;
		r_fail(&r, "out of memory");
		goto out_close;
	}
	if (!dump_meta(metapath, &in, &cf)) {
		r_fail(&r, "write %s failed", metapath);
		goto out_close;
	}
	dump_report(&r, out, metapath, &in, &cf);
out_close:
	close(fd);
out:
	free(metapath);
	free(buf);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fb-throughput                                                       */

static volatile sig_atomic_t g_alarm;

static void on_alarm(int sig)
{
	(void)sig;
	g_alarm = 1;
}

static void fb_phase(int fd, const uint8_t *src, uint8_t *dst,
		     const struct hilbox_info *in, enum fb_method m,
		     bool seqlock, double seconds, struct tp_stats *s)
{
	uint64_t t0 = now_ns(), c0 = cpu_ns();
	uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
	uint64_t last = UINT64_MAX;
	uint64_t user_bytes0 = g_bytes_read;
	struct itimerval it;
	struct copy_out o;
	uint32_t n16;
	int ret;

	memset(s, 0, sizeof(*s));
	/* a frame copy must not outlive the phase: interrupt it */
	g_alarm = 0;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)(seconds + 2);
	setitimer(ITIMER_REAL, &it, NULL);
	while (!g_alarm && now_ns() < deadline) {
		if (m == M_RAM) {
			ret = raw_copy(dst, src, in->fb_bytes, M_RAM,
				       deadline) ? -ETIME : 0;
			memset(&o, 0, sizeof(o));
		} else {
			ret = copy_frame_any(fd, src, dst, in, m, seqlock,
					     deadline, &o);
		}
		if (ret == -ETIME || ret == -EINTR) {
			s->retries += o.retries;
			break;
		}
		if (ret == -EAGAIN) {	/* seqlock gave up on this frame */
			s->giveups++;
			continue;
		}
		if (ret) {
			s->err = -ret;
			break;
		}
		s->frames++;
		if (m == M_COPY)	/* the kernel copied it: count the frame */
			s->bytes += in->fb_bytes;
		s->retries += o.retries;
		if (o.seq1 != o.seq2)
			s->seq_mismatch++;
		if (m != M_RAM && !frame_consistent(dst, in, &n16))
			s->torn++;
		if (m != M_RAM && o.frame_number != last) {
			if (last != UINT64_MAX && o.frame_number > last + 1)
				s->missed += o.frame_number - last - 1;
			s->distinct++;
			last = o.frame_number;
		}
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	/* user-space methods: every byte read counts, torn or partial frames included */
	s->bytes += g_bytes_read - user_bytes0;
	s->wall_ns = now_ns() - t0;
	s->cpu_ns = cpu_ns() - c0;
}

static int cmd_fb_throughput(const char *method, double seconds,
			     const char *seqlock_mode)
{
	struct sigaction sa;
	struct hilbox_info in;
	struct tp_stats s1, s2;
	struct result r;
	enum fb_method m;
	const uint8_t *fb = NULL;
	uint8_t *dst = NULL, *ram = NULL;
	bool both = !strcmp(seqlock_mode, "both");
	bool lock = strcmp(seqlock_mode, "off") != 0;
	char name[64];
	unsigned int i;
	int fd;

	for (m = M_COPY; m <= M_RAM; m++)
		if (!strcmp(method, method_name[m]))
			break;
	if (m > M_RAM) {
		dbg("unknown method %s", method);
		return 2;
	}
	snprintf(name, sizeof(name), "fb-%s", method);
	r_init(&r, "throughput", name, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt the copy */
	sigaction(SIGALRM, &sa, NULL);

	fd = open_checked(&r, O_RDONLY, &in);
	if (fd < 0)
		goto out;
	info_into(&r, &in);
	r_dstr(&r, "method", method);
	r_dstr(&r, "seqlock", seqlock_mode);
	dst = malloc(in.fb_bytes);
	if (!dst) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	memset(dst, 0, in.fb_bytes);
	if (m == M_RAM) {
		ram = malloc(in.fb_bytes);
		if (!ram || dev_copy(fd, ram, in.fb_bytes, 0, 256,
				     &(struct hilbox_copy_frame){ 0 })) {
			r_fail(&r, "cannot prepare the RAM frame");
			goto out_close;
		}
		fb = ram;
		both = false;
		lock = false;
	} else if (m != M_COPY) {
		fb = map_fb(fd, &in);
		if (!fb) {
			r_fail(&r, "mmap: %s", strerror(errno));
			goto out_close;
		}
		/* fault the whole mapping in outside the measurement */
		for (i = 0; i < in.fb_bytes; i += 4096)
			(void)((const volatile uint8_t *)fb)[i];
	}

	fb_phase(fd, fb, dst, &in, m, lock, seconds, &s1);
	tp_metrics(&r, &s1, "");
	if (s1.err)
		r_fail(&r, "copy failed: %s", strerror((int)s1.err));
	if (lock && s1.torn)
		r_fail(&r, "%llu torn frames despite the seqlock",
		       (unsigned long long)s1.torn);
	if (!s1.frames)
		r_dstr(&r, "note", "no consistent frame: one copy takes longer than a frame period");
	if (both) {
		fb_phase(fd, fb, dst, &in, m, false, seconds, &s2);
		tp_metrics(&r, &s2, "_no_seqlock");
		if (s2.err)
			r_fail(&r, "copy without seqlock failed: %s",
			       strerror((int)s2.err));
	}
	{
		/*
		 * Read bandwidth: bytes moved per second, torn or not. The seqlocked phase can
		 * report 0 when one copy outlasts a frame period (it never gets a consistent
		 * frame); the unlocked phase then still tells how fast the bytes move.
		 */
		double w1 = s1.wall_ns ? (double)s1.wall_ns / 1e9 : 1e-9;
		double bw = (double)s1.bytes / w1 / 1e6;

		if (both && s2.wall_ns) {
			double bw2 = (double)s2.bytes / ((double)s2.wall_ns / 1e9) / 1e6;

			if (bw2 > bw)
				bw = bw2;
		}
		r_metric(&r, "read_mb_per_s", bw, "MB/s");
	}
	if (fb && m != M_RAM)
		munmap((void *)fb, in.bar2_size);
out_close:
	close(fd);
out:
	free(ram);
	free(dst);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static int cmd_read_events(uint64_t count, int timeout_ms, bool flush)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct hilbox_event ev[16];
	struct hilbox_info in;
	struct ev_acc a;
	struct result r;
	ssize_t n;
	int fd, i;

	memset(&a, 0, sizeof(a));
	r_init(&r, "events", "read-events", NULL);
	fd = open_checked(&r, O_RDONLY | O_NONBLOCK, &in);
	if (fd < 0)
		goto out;
	if (dev_set_events(fd, 1, flush ? HILBOX_EVCTL_FLUSH : 0)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	while (a.n < count) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(((int64_t)deadline - (int64_t)now_ns()) / 1000000);
		size_t want = count - a.n < 16 ? count - a.n : 16;

		if (left <= 0) {
			r_fail(&r, "timed out after %llu of %llu records",
			       (unsigned long long)a.n, (unsigned long long)count);
			break;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		n = read(fd, ev, want * EV_SZ);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			r_fail(&r, "read: %s", strerror(errno));
			break;
		}
		if (n % (ssize_t)EV_SZ) {
			r_fail(&r, "read returned %zd bytes, not whole records", n);
			break;
		}
		for (i = 0; i < n / (ssize_t)EV_SZ; i++)
			acc_add(&a, &ev[i], 0);
	}
	read_events_report(&r, &a);
out_close:
	close(fd);
out:
	r_emit(&r);
	return 0;
}

/* --- events-throughput --- */

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
		acc_add(&t->acc, &e, clk);
		if (t->seqs_n < t->seqs_cap)
			t->seqs[t->seqs_n++] = e.seq;
	}
	return NULL;
}

static int cmd_events_throughput(unsigned int pending, double seconds,
				 const char *mode)
{
	uint64_t t0, deadline, c0;
	struct hilbox_stats st0, st1;
	struct hilbox_info in;
	struct ev_acc a;
	struct result r;
	char name[64];
	int fd = -1, ret;
	size_t cap = (size_t)(seconds * 20000) + 1024;

	memset(&a, 0, sizeof(a));
	a.lat = calloc(cap, sizeof(uint64_t));
	a.lat_cap = a.lat ? cap : 0;
	a.seqs = calloc(cap, sizeof(uint64_t));
	a.seqs_cap = a.seqs ? cap : 0;
	snprintf(name, sizeof(name), "events-%s", mode);
	r_init(&r, "throughput", name, NULL);
	if (!pending)
		pending = 1;
	fd = open_checked(&r, O_RDONLY | (!strcmp(mode, "poll") ? O_NONBLOCK : 0),
			  &in);
	if (fd < 0)
		goto out;
	r_dstr(&r, "mode", mode);
	r_dnum(&r, "pending", pending);
	r_dnum(&r, "ev_rate_hz", in.ev_rate_hz);
	r_dnum(&r, "ev_bundle", in.ev_bundle);
	if (dev_set_events(fd, 1, HILBOX_EVCTL_FLUSH)) {
		r_fail(&r, "HILBOX_IOC_SET_EVENTS: %s", strerror(errno));
		goto out_close;
	}
	dev_stats(fd, &st0);
	t0 = now_ns();
	c0 = cpu_ns();
	deadline = t0 + (uint64_t)(seconds * 1e9);

	if (!strcmp(mode, "uring") || !strcmp(mode, "uring-wq")) {
		uint8_t sqflags = !strcmp(mode, "uring-wq") ? IOSQE_ASYNC : 0;
		struct hilbox_event *bufs = calloc(pending, EV_SZ);
		struct io_uring_cqe cqes[64];
		struct uring u;
		unsigned int i, inflight = 0;
		int n, k;
		uint64_t clk;

		ret = bufs ? uring_init(&u, pending < 4096 ? pending * 2 : 8192) :
			     -ENOMEM;
		if (ret) {
			if (ret == -ENOSYS || ret == -EPERM)
				r_skip(&r, "io_uring unavailable: %s", strerror(-ret));
			else
				r_fail(&r, "io_uring_setup: %s", strerror(-ret));
			free(bufs);
			goto out_close;
		}
		for (i = 0; i < pending; i++) {
			if (uring_queue_read(&u, fd, &bufs[i], EV_SZ, i, sqflags))
				break;
			inflight++;
		}
		uring_submit(&u);
		while (now_ns() < deadline) {
			n = uring_reap(&u, cqes, 64, 100);
			if (!n)
				continue;
			clk = 0;
			dev_clock(fd, &clk);	/* time of receipt */
			for (k = 0; k < n; k++) {
				i = (unsigned int)cqes[k].user_data;
				if (cqes[k].res == (int)EV_SZ)
					acc_add(&a, &bufs[i], clk);
				else
					a.errors++;
				if (cqes[k].res < 0 && a.errors < 4)
					dbg("uring read: %s", strerror(-cqes[k].res));
				if (cqes[k].res < 0 && cqes[k].res != -EINTR &&
				    cqes[k].res != -EAGAIN && a.errors > 100)
					continue;	/* give up on this slot */
				uring_queue_read(&u, fd, &bufs[i], EV_SZ, i, sqflags);
			}
			uring_submit(&u);
		}
		uring_exit(&u);	/* cancels what is still pending */
		free(bufs);
	} else if (!strcmp(mode, "poll")) {
		struct hilbox_event ev[16];
		size_t want = pending < 16 ? pending : 16;
		uint64_t clk;
		ssize_t n;
		int i;

		while (now_ns() < deadline) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 100) <= 0)
				continue;
			n = read(fd, ev, want * EV_SZ);
			if (n <= 0) {
				if (n < 0 && errno != EAGAIN)
					a.errors++;
				continue;
			}
			clk = 0;
			dev_clock(fd, &clk);
			for (i = 0; i < n / (ssize_t)EV_SZ; i++)
				acc_add(&a, &ev[i], clk);
		}
	} else if (!strcmp(mode, "blocking")) {
		struct bl_thread *t = calloc(pending, sizeof(*t));
		struct sigaction sa;
		size_t total = 0, j;
		unsigned int i, started = 0;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;	/* no SA_RESTART */
		sigaction(SIGUSR1, &sa, NULL);
		g_stop = 0;
		for (i = 0; t && i < pending; i++) {
			t[i].fd = fd;
			t[i].deadline = deadline;
			t[i].seqs_cap = cap / pending + 64;
			t[i].seqs = calloc(t[i].seqs_cap, sizeof(uint64_t));
			t[i].acc.lat_cap = t[i].seqs_cap;
			t[i].acc.lat = calloc(t[i].seqs_cap, sizeof(uint64_t));
			if (!t[i].seqs || !t[i].acc.lat ||
			    pthread_create(&t[i].th, NULL, bl_reader, &t[i]))
				break;
			started++;
		}
		while (now_ns() < deadline)
			sleep_ms(20);
		g_stop = 1;
		for (i = 0; i < started; i++)
			pthread_kill(t[i].th, SIGUSR1);
		for (i = 0; i < started; i++) {
			pthread_join(t[i].th, NULL);
			total += t[i].seqs_n;
		}
		/* per reader order, then global: every seq exactly once */
		for (i = 0; i < started; i++) {
			a.order_viol += t[i].acc.order_viol + t[i].acc.dup;
			a.errors += t[i].err ? 1 : 0;
			a.n += t[i].seqs_n;
			for (j = 0; j < t[i].seqs_n && a.seqs_n < a.seqs_cap; j++)
				a.seqs[a.seqs_n++] = t[i].seqs[j];
			for (j = 0; j < t[i].acc.lat_n && a.lat_n < a.lat_cap; j++)
				a.lat[a.lat_n++] = t[i].acc.lat[j];
		}
		(void)total;
		for (i = 0; t && i < pending; i++) {
			free(t[i].seqs);
			free(t[i].acc.lat);
		}
		free(t);
		if (started < pending)
			r_fail(&r, "started only %u of %u reader threads",
			       started, pending);
	} else {
		dbg("unknown mode %s", mode);
		close(fd);
		free(a.lat);
		free(a.seqs);
		return 2;
	}

	{
		uint64_t wall = now_ns() - t0, cpu = cpu_ns() - c0;

		dev_set_events(fd, 0, 0);
		dev_stats(fd, &st1);
		/* uring/poll: completion order; blocking: per reader order */
		ev_tp_report(&r, &a, &st0, &st1, wall, cpu, seconds,
			     strcmp(mode, "uring-wq") != 0);
	}
out_close:
	close(fd);
out:
	free(a.lat);
	free(a.seqs);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* security cases                                                      */

struct sec_ctx {
	struct hilbox_info in;
	int fd;			/* root-opened O_RDONLY descriptor */
	int sock;		/* scm-rights */
	pid_t peer;		/* fork-exec */
};

/* --- unprivileged-open --- */

static void ch_unpriv_open(void *arg, struct child_msg *m)
{
	int fd;

	(void)arg;
	fd = open(g_dev, O_RDONLY);
	cm_detail(m, "O_RDONLY:%s", fd < 0 ? errname(errno) : "OK");
	if (fd >= 0) {
		cm_fail(m, "uid %d opened %s read-only", NOBODY_ID, g_dev);
		close(fd);
	}
	fd = open(g_dev, O_RDWR);
	cm_detail(m, "O_RDWR:%s", fd < 0 ? errname(errno) : "OK");
	if (fd >= 0) {
		cm_fail(m, "uid %d opened %s read-write", NOBODY_ID, g_dev);
		close(fd);
	}
}

static void sec_unprivileged_open(struct result *r, struct sec_ctx *c)
{
	struct child_msg m;
	struct stat sb;

	if (stat(g_dev, &sb)) {
		r_fail(r, "stat %s: %s", g_dev, strerror(errno));
		return;
	}
	r_dnum(r, "mode", sb.st_mode & 07777);
	r_dnum(r, "uid", sb.st_uid);
	r_dnum(r, "gid", sb.st_gid);
	child_into(r, run_child(ch_unpriv_open, c, true, 10000, &m, NULL), &m);
	if ((sb.st_mode & 0077) || sb.st_uid != 0)
		r_fail(r, "%s is mode %04o uid %u, expected 0600 root",
		       g_dev, sb.st_mode & 07777, sb.st_uid);
}

/* --- proc-fd-reopen --- */

static void ch_proc_reopen(void *arg, struct child_msg *m)
{
	struct sec_ctx *c = arg;
	struct hilbox_info in;
	char path[64];
	int fd;

	/* the inherited descriptor itself keeps working */
	if (dev_info(c->fd, &in))
		cm_fail(m, "inherited fd unusable: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
	fd = open(path, O_RDONLY);
	cm_detail(m, "reopen_rdonly:%s", fd < 0 ? errname(errno) : "OK");
	if (fd >= 0) {
		cm_fail(m, "reopened %s read-only as uid %d", path, NOBODY_ID);
		close(fd);
	}
	fd = open(path, O_RDWR);
	cm_detail(m, "reopen_rdwr:%s", fd < 0 ? errname(errno) : "OK");
	if (fd >= 0) {
		cm_fail(m, "upgraded %s to read-write as uid %d", path, NOBODY_ID);
		close(fd);
	}
}

static void sec_proc_fd_reopen(struct result *r, struct sec_ctx *c)
{
	struct child_msg m;
	int fd = open(g_dev, O_RDONLY);	/* inheritable on purpose */

	if (fd < 0) {
		r_fail(r, "open: %s", strerror(errno));
		return;
	}
	c->fd = fd;
	child_into(r, run_child(ch_proc_reopen, c, true, 10000, &m, NULL), &m);
	close(fd);
}

/* --- pidfd-getfd-unprivileged --- */

struct getfd_arg {
	pid_t target;
	int fd;
};

static void ch_getfd(void *arg, struct child_msg *m)
{
	struct getfd_arg *g = arg;
	int pidfd, fd;

	pidfd = (int)syscall(SYS_pidfd_open, g->target, 0);
	if (pidfd < 0) {
		m->status = 2;
		snprintf(m->reason, sizeof(m->reason), "pidfd_open: %s",
			 strerror(errno));
		return;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, g->fd, 0);
	cm_detail(m, "pidfd_getfd:%s", fd < 0 ? errname(errno) : "OK");
	if (fd >= 0) {
		cm_fail(m, "uid %d stole the device fd of pid %d", getuid(),
			g->target);
		close(fd);
	} else if (errno == ENOSYS) {
		m->status = 2;
		snprintf(m->reason, sizeof(m->reason), "pidfd_getfd unsupported");
	}
	close(pidfd);
}

static void sec_pidfd_getfd(struct result *r, struct sec_ctx *c)
{
	struct getfd_arg g = { getpid(), -1 };
	struct child_msg m;
	int ret;

	g.fd = dev_open(O_RDONLY);
	if (g.fd < 0) {
		r_fail(r, "open: %s", strerror(-g.fd));
		return;
	}
	ret = run_child(ch_getfd, &g, true, 10000, &m, NULL);
	child_into(r, ret, &m);
	/* control: the same call as root must work, else the test is void */
	if (!r->status) {
		ret = run_child(ch_getfd, &g, false, 10000, &m, NULL);
		r_dstr(r, "root_control", ret ? "child died" :
		       m.status == 1 ? "root could take the fd (expected)" :
		       m.reason);
	}
	close(g.fd);
}

/* --- scm-rights-map --- */

static void ch_scm(void *arg, struct child_msg *m)
{
	struct sec_ctx *c = arg;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct hilbox_info in;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	char b;
	const uint8_t *p;
	void *w;
	int fd = -1;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = &b;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(c->sock, &mh, 0) != 1) {
		cm_fail(m, "recvmsg: %s", strerror(errno));
		return;
	}
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS) {
		cm_fail(m, "no descriptor received");
		return;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (dev_info(fd, &in)) {
		cm_fail(m, "INFO on received fd: %s", strerror(errno));
		return;
	}
	/* the fd is a capability: read-only mapping is allowed... */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		cm_fail(m, "read-only map of received fd failed: %s",
			strerror(errno));
	} else {
		uint32_t lo = (uint8_t)(p[0] - 0), hi = p[2] & 0xff;

		cm_detail(m, "ro_map:OK pixel0_frame16:%u", hi << 8 | lo);
		if (p[1] != (uint8_t)lo)
			cm_fail(m, "mapped pixel 0 is not a valid frame pixel");
		if (!mprotect((void *)p, 4096, PROT_READ | PROT_WRITE))
			cm_fail(m, "mprotect(PROT_WRITE) succeeded as uid %d",
				NOBODY_ID);
		else
			cm_detail(m, "mprotect_write:%s", errname(errno));
		munmap((void *)p, 4096);
	}
	/* ...but never a writable one */
	w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cm_detail(m, "rw_map:%s", w == MAP_FAILED ? errname(errno) : "OK");
	if (w != MAP_FAILED) {
		cm_fail(m, "writable mapping from received fd");
		munmap(w, 4096);
	}
	w = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	cm_detail(m, "private_map:%s", w == MAP_FAILED ? errname(errno) : "OK");
	if (w != MAP_FAILED) {
		cm_fail(m, "MAP_PRIVATE mapping from received fd");
		munmap(w, 4096);
	}
	close(fd);
}

static void sec_scm_rights(struct result *r, struct sec_ctx *c)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct child_msg m;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	int sv[2], fd, st = 0, ret;
	pid_t pid;
	char b = 'x';

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		r_fail(r, "socketpair: %s", strerror(errno));
		return;
	}
	/* the child forks before the device is opened: no inheritance */
	c->sock = sv[1];
	{
		int pfd[2];

		if (pipe2(pfd, O_CLOEXEC)) {
			r_fail(r, "pipe: %s", strerror(errno));
			goto out;
		}
		pid = fork();
		if (pid == 0) {
			struct child_msg cmm;

			close(pfd[0]);
			memset(&cmm, 0, sizeof(cmm));
			if (drop_privileges()) {
				cmm.status = 2;
				snprintf(cmm.reason, sizeof(cmm.reason),
					 "cannot drop privileges");
			} else {
				ch_scm(c, &cmm);
			}
			if (write(pfd[1], &cmm, sizeof(cmm)) < 0)
				_exit(3);
			_exit(0);
		}
		close(pfd[1]);
		if (pid < 0) {
			r_fail(r, "fork: %s", strerror(errno));
			close(pfd[0]);
			goto out;
		}
		fd = dev_open(O_RDONLY);
		if (fd < 0) {
			r_fail(r, "open: %s", strerror(-fd));
			kill(pid, SIGKILL);
		} else {
			memset(&mh, 0, sizeof(mh));
			iov.iov_base = &b;
			iov.iov_len = 1;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
			if (sendmsg(sv[0], &mh, 0) != 1)
				r_fail(r, "sendmsg: %s", strerror(errno));
			close(fd);	/* the receiver's copy must suffice */
		}
		memset(&m, 0, sizeof(m));
		{
			struct pollfd p = { .fd = pfd[0], .events = POLLIN };

			ret = poll(&p, 1, 15000) == 1 &&
			      read(pfd[0], &m, sizeof(m)) == sizeof(m) ? 0 :
			      -ETIMEDOUT;
		}
		if (ret)
			kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		close(pfd[0]);
		child_into(r, ret, &m);
	}
out:
	close(sv[0]);
	close(sv[1]);
}

/* --- write-through-mapping / write-mapping --- */

static void sec_write_mapping(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t before[16];
	int sig;

	p = map_fb(c->fd, &c->in);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	memcpy(before, p, sizeof(before));
	dev_stats(c->fd, &s0);
	sig = touch_in_child(p, true);
	dev_stats(c->fd, &s1);
	r_dstr(r, "child_signal", signame(sig));
	r_metric(r, "fb_write_attempts_delta",
		 (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (sig != SIGSEGV && sig != SIGBUS)
		r_fail(r, "writing child was not killed by SIGSEGV/SIGBUS (%s)",
		       signame(sig));
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device (FB_WRITE_ATTEMPTS +%llu)",
		       (unsigned long long)(s1.fb_write_attempts -
					    s0.fb_write_attempts));
	/* reading still works in the parent */
	sig = touch_in_child(p, false);
	if (sig)
		r_fail(r, "reading the mapping in a child died with %s",
		       signame(sig));
	munmap((void *)p, c->in.bar2_size);
}

/* --- mprotect-write --- */

static void sec_mprotect(struct result *r, struct sec_ctx *c)
{
	int fds[2] = { c->fd, -1 }, i;
	const char *names[2] = { "rdonly", "rdwr" };
	char key[64];

	fds[1] = dev_open(O_RDWR);
	for (i = 0; i < 2; i++) {
		void *p;

		if (fds[i] < 0) {
			r_fail(r, "open O_RDWR: %s", strerror(-fds[i]));
			continue;
		}
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED) {
			r_fail(r, "mmap(%s): %s", names[i], strerror(errno));
			continue;
		}
		snprintf(key, sizeof(key), "%s_mprotect_write", names[i]);
		if (!mprotect(p, 4096, PROT_READ | PROT_WRITE)) {
			r_dstr(r, key, "OK");
			r_fail(r, "mprotect(PROT_WRITE) succeeded on %s fd", names[i]);
		} else {
			r_dstr(r, key, errname(errno));
			if (errno != EACCES)
				r_fail(r, "mprotect(PROT_WRITE): %s, expected EACCES",
				       errname(errno));
		}
		snprintf(key, sizeof(key), "%s_mprotect_exec", names[i]);
		if (!mprotect(p, 4096, PROT_READ | PROT_EXEC)) {
			r_dstr(r, key, "OK");
			r_fail(r, "mprotect(PROT_EXEC) succeeded on %s fd", names[i]);
		} else {
			r_dstr(r, key, errname(errno));
		}
		munmap(p, 4096);
	}
	if (fds[1] >= 0)
		close(fds[1]);
}

/* --- proc-self-mem-write --- */

static void sec_proc_mem(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t v = 0x5a, rd;
	struct iovec lio, rio;
	ssize_t n;
	int mfd;

	p = map_fb(c->fd, &c->in);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	(void)*(const volatile uint8_t *)p;	/* populate */
	dev_stats(c->fd, &s0);
	mfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mfd < 0) {
		r_skip(r, "open /proc/self/mem: %s", strerror(errno));
		goto out;
	}
	n = pwrite(mfd, &v, 1, (off_t)(uintptr_t)p);
	r_dstr(r, "proc_mem_write", n == 1 ? "OK" : errname(errno));
	if (n == 1)
		r_fail(r, "write through /proc/self/mem succeeded");
	n = pread(mfd, &rd, 1, (off_t)(uintptr_t)p);
	r_dstr(r, "proc_mem_read", n == 1 ? "OK" : errname(errno));
	close(mfd);
	lio.iov_base = &v;
	lio.iov_len = 1;
	rio.iov_base = (void *)p;
	rio.iov_len = 1;
	n = process_vm_writev(getpid(), &lio, 1, &rio, 1, 0);
	r_dstr(r, "process_vm_writev", n == 1 ? "OK" : errname(errno));
	if (n == 1)
		r_fail(r, "process_vm_writev into the mapping succeeded");
	dev_stats(c->fd, &s1);
	r_metric(r, "fb_write_attempts_delta",
		 (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device");
out:
	munmap((void *)p, c->in.bar2_size);
}

/* --- mmap argument checks --- */

static bool expect_map_fail(struct result *r, const char *what, int fd,
			    size_t len, int prot, int flags, off_t off,
			    int want_errno)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);
	int e = errno;

	r_dstr(r, what, p == MAP_FAILED ? errname(e) : "OK");
	if (p != MAP_FAILED) {
		munmap(p, len);
		r_fail(r, "%s: mmap succeeded", what);
		return false;
	}
	if (want_errno && e != want_errno) {
		r_fail(r, "%s: %s, expected %s", what, errname(e),
		       errname(want_errno));
		return false;
	}
	return true;
}

static void sec_map_private(struct result *r, struct sec_ctx *c)
{
	expect_map_fail(r, "map_private_ro", c->fd, 4096, PROT_READ,
			MAP_PRIVATE, 0, EINVAL);
}

static void sec_map_prot_write(struct result *r, struct sec_ctx *c)
{
	int rw = dev_open(O_RDWR);

	/* O_RDONLY file: the VFS refuses before the driver sees it */
	expect_map_fail(r, "rdonly_prot_write", c->fd, 4096,
			PROT_READ | PROT_WRITE, MAP_SHARED, 0, EACCES);
	if (rw < 0) {
		r_fail(r, "open O_RDWR: %s", strerror(-rw));
		return;
	}
	/* O_RDWR file: the driver refuses */
	expect_map_fail(r, "rdwr_prot_write", rw, 4096, PROT_READ | PROT_WRITE,
			MAP_SHARED, 0, EPERM);
	expect_map_fail(r, "rdwr_prot_write_only", rw, 4096, PROT_WRITE,
			MAP_SHARED, 0, EPERM);
	expect_map_fail(r, "rdonly_prot_exec", c->fd, 4096,
			PROT_READ | PROT_EXEC, MAP_SHARED, 0, 0);
	close(rw);
}

static void sec_offset_range(struct result *r, struct sec_ctx *c)
{
	off_t bar = (off_t)c->in.bar2_size;
	void *p;

	expect_map_fail(r, "offset_eq_bar2_size", c->fd, 4096, PROT_READ,
			MAP_SHARED, bar, EINVAL);
	expect_map_fail(r, "last_page_plus_one", c->fd, 8192, PROT_READ,
			MAP_SHARED, bar - 4096, EINVAL);
	expect_map_fail(r, "offset_1tib", c->fd, 4096, PROT_READ, MAP_SHARED,
			(off_t)1 << 40, EINVAL);
	expect_map_fail(r, "offset_unaligned", c->fd, 4096, PROT_READ,
			MAP_SHARED, 100, EINVAL);
	/* control: the last page itself is fine */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, c->fd, bar - 4096);
	r_dstr(r, "last_page", p == MAP_FAILED ? errname(errno) : "OK");
	if (p == MAP_FAILED)
		r_fail(r, "mapping the last page of BAR2 failed: %s",
		       strerror(errno));
	else if (touch_in_child(p, false))
		r_fail(r, "reading the last page died");
	if (p != MAP_FAILED)
		munmap(p, 4096);
}

static void sec_length_overflow(struct result *r, struct sec_ctx *c)
{
	size_t bar = (size_t)c->in.bar2_size;

	expect_map_fail(r, "len_bar2_plus_page", c->fd, bar + 4096, PROT_READ,
			MAP_SHARED, 0, EINVAL);
	expect_map_fail(r, "len_2x_bar2", c->fd, bar * 2, PROT_READ, MAP_SHARED,
			0, EINVAL);
	expect_map_fail(r, "len_128tib", c->fd, (size_t)1 << 47, PROT_READ,
			MAP_SHARED, 0, 0);
	/* page offset + length wrap around */
	expect_map_fail(r, "offset_near_wrap", c->fd, 8192, PROT_READ,
			MAP_SHARED, (off_t)(((uint64_t)1 << 63) - 4096), 0);
	expect_map_fail(r, "offset_negative", c->fd, 8192, PROT_READ,
			MAP_SHARED, (off_t)-4096, 0);
	expect_map_fail(r, "len_max", c->fd, SIZE_MAX & ~(size_t)4095,
			PROT_READ, MAP_SHARED, 4096, 0);
}

static void sec_mremap_grow(struct result *r, struct sec_ctx *c)
{
	const uint8_t *p, *q;
	uint8_t a, b;

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, c->fd, 0);
	if (p == MAP_FAILED) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	q = mremap((void *)p, 4096, 8192, MREMAP_MAYMOVE);
	r_dstr(r, "grow_maymove", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		r_fail(r, "mremap grew the mapping");
		p = q;
	}
	q = mremap((void *)p, 4096, 8192, 0);
	r_dstr(r, "grow_in_place", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		r_fail(r, "mremap grew the mapping in place");
		p = q;
	}
	/* moving (same size) is harmless: the pages stay the same */
	a = *(const volatile uint8_t *)p;
	q = mremap((void *)p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)(((uintptr_t)p) + ((uintptr_t)1 << 30)));
	r_dstr(r, "move_same_size", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		p = q;
		if (touch_in_child(p, false))
			r_fail(r, "moved mapping unreadable");
		b = *(const volatile uint8_t *)p;
		r_dnum(r, "byte_before_move", a);
		r_dnum(r, "byte_after_move", b);
	}
	munmap((void *)p, 4096);
}

static void sec_close_while_mapped(struct result *r, struct sec_ctx *c)
{
	struct verify_res v;
	struct hilbox_info in;
	uint8_t *buf;
	const uint8_t *p;
	uint32_t n16;
	int fd = dev_open(O_RDONLY), tries;

	if (fd < 0) {
		r_fail(r, "open: %s", strerror(-fd));
		return;
	}
	in = c->in;
	p = map_fb(fd, &in);
	close(fd);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	buf = malloc(in.fb_bytes);
	if (!buf) {
		r_fail(r, "out of memory");
		goto out;
	}
	if (touch_in_child(p + in.fb_bytes - 1, false)) {
		r_fail(r, "mapping unreadable after close");
		goto out;
	}
	for (tries = 0; tries < 50; tries++) {
		memcpy(buf, p, in.fb_bytes);
		if (frame_consistent(buf, &in, &n16))
			break;
	}
	r_dnum(r, "frame16", n16);
	if (tries == 50) {
		r_fail(r, "no consistent frame read after close");
	} else {
		/* full check against the decoded number (mod 65536) */
		verify_frame(buf, &in, n16, &v);
		r_metric(r, "mismatched_pixels", (double)v.bad_px, "px");
		if (v.bad_px && v.bad_px == v.other_px)
			r_dstr(r, "note", "frame changed during the read");
		else if (v.bad_px)
			r_fail(r, "garbage pixels read after close");
	}
	fd = dev_open(O_RDONLY);
	if (fd < 0)
		r_fail(r, "reopen failed: %s", strerror(-fd));
	else
		close(fd);
out:
	free(buf);
	munmap((void *)p, in.bar2_size);
}

/* --- fork-exec-inherit --- */

static void sec_fork_exec(struct result *r, struct sec_ctx *c)
{
	int pfd[2], st;
	pid_t a;
	char line[1024];
	ssize_t n, got = 0;
	uint64_t deadline = now_ns() + 20000000000ull;

	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (pipe(pfd)) {
		r_fail(r, "pipe: %s", strerror(errno));
		return;
	}
	a = fork();
	if (a == 0) {
		/* A: open, map, fork B, exit at once */
		int fd1 = open(g_dev, O_RDONLY);		/* inheritable */
		int fd2 = open(g_dev, O_RDONLY | O_CLOEXEC);
		struct hilbox_info in;
		const uint8_t *p;
		pid_t b, self = getpid();

		close(pfd[0]);
		if (fd1 < 0 || fd2 < 0 || dev_info(fd2, &in))
			_exit(10);
		p = map_fb(fd2, &in);
		if (!p)
			_exit(11);
		b = fork();
		if (b < 0)
			_exit(12);
		if (b == 0) {
			char a1[32], a2[32], a3[32];
			uint8_t buf[64];
			uint32_t n16;
			int i;

			/* B: wait until A is gone, then use the inherited map */
			for (i = 0; i < 2000 && getppid() == self; i++)
				sleep_ms(5);
			if (getppid() == self) {
				dprintf(pfd[1], "FAIL parent did not exit\n");
				_exit(1);
			}
			memcpy(buf, p, sizeof(buf));
			n16 = (uint8_t)(buf[0]) | (uint32_t)buf[2] << 8;
			if (buf[1] != buf[0]) {	/* y=0, x=0: G == R */
				dprintf(pfd[1], "FAIL inherited mapping returns garbage after parent exit\n");
				_exit(1);
			}
			dprintf(pfd[1], "INFO mapping_after_parent_exit:OK frame16:%u\n",
				n16);
			munmap((void *)p, in.bar2_size);
			snprintf(a1, sizeof(a1), "%d", fd1);
			snprintf(a2, sizeof(a2), "%d", fd2);
			snprintf(a3, sizeof(a3), "%d", pfd[1]);
			execl(g_self, "hilbox-probe", "--dev", g_dev,
			      "_exec-check", a1, a2, a3, (char *)NULL);
			dprintf(pfd[1], "FAIL exec %s: %s\n", g_self,
				strerror(errno));
			_exit(1);
		}
		_exit(0);
	}
	close(pfd[1]);
	if (a < 0) {
		r_fail(r, "fork: %s", strerror(errno));
		close(pfd[0]);
		return;
	}
	while (got < (ssize_t)sizeof(line) - 1) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int left = (int)(((int64_t)deadline - (int64_t)now_ns()) / 1000000);

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		n = read(pfd[0], line + got, sizeof(line) - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	line[got] = 0;
	close(pfd[0]);
	waitpid(a, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		r_fail(r, "first child failed early (status %d)", WEXITSTATUS(st));
	/* reap B (reparented to us) */
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	r_dstr(r, "log", line);
	if (strstr(line, "FAIL"))
		r_fail(r, "%s", strstr(line, "FAIL") + 5);
	else if (!strstr(line, "EXEC-OK"))
		r_fail(r, "exec'ed child did not report");
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

static int cmd_exec_check(int fd1, int fd2, int out)
{
	struct hilbox_info in;

	if (dev_info(fd1, &in)) {
		dprintf(out, "FAIL inherited fd without O_CLOEXEC unusable after exec: %s\n",
			strerror(errno));
		return 1;
	}
	if (fcntl(fd2, F_GETFD) != -1 || errno != EBADF) {
		dprintf(out, "FAIL O_CLOEXEC fd survived exec\n");
		return 1;
	}
	dprintf(out, "EXEC-OK fd_without_cloexec:usable fd_with_cloexec:closed\n");
	return 0;
}

/* --- reads-pending-then-killed --- */

static void *pending_reader(void *arg)
{
	struct hilbox_event e;
	int fd = *(int *)arg;

	for (;;)
		if (read(fd, &e, sizeof(e)) < 0 && errno != EINTR)
			break;
	return NULL;
}

static void sec_reads_killed(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats st;
	struct hilbox_event e;
	uint64_t t0, reap_ns;
	int pfd[2], stt, i, fd;
	pid_t pid;
	char ready;

	if (pipe2(pfd, O_CLOEXEC)) {
		r_fail(r, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		static struct hilbox_event bufs[8];
		struct uring u;
		pthread_t th;

		close(pfd[0]);
		fd = dev_open(O_RDONLY);
		/* explicitly unsubscribed: reads stay pending */
		if (fd < 0 || dev_set_events(fd, 0, 0))
			_exit(1);
		for (i = 0; i < 6; i++)
			if (pthread_create(&th, NULL, pending_reader, &fd))
				_exit(2);
		if (!uring_init(&u, 16)) {
			for (i = 0; i < 8; i++)
				uring_queue_read(&u, fd, &bufs[i], EV_SZ, (unsigned)i,
						 i < 4 ? 0 : IOSQE_ASYNC);
			uring_submit(&u);
		}
		sleep_ms(300);
		if (write(pfd[1], "R", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (pid < 0) {
		r_fail(r, "fork: %s", strerror(errno));
		close(pfd[0]);
		return;
	}
	{
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || read(pfd[0], &ready, 1) != 1) {
			r_fail(r, "reader process did not get ready");
			kill(pid, SIGKILL);
			waitpid(pid, &stt, 0);
			close(pfd[0]);
			return;
		}
	}
	close(pfd[0]);
	dev_stats(c->fd, &st);
	r_metric(r, "readers_waiting_before", st.readers_waiting, "requests");
	if (st.readers_waiting < 6 && !st.subscribers)
		r_fail(r, "only %u blocked readers queued, expected >= 6",
		       st.readers_waiting);
	t0 = now_ns();
	kill(pid, SIGKILL);
	for (;;) {
		if (waitpid(pid, &stt, WNOHANG) == pid)
			break;
		if (now_ns() - t0 > 10000000000ull) {
			r_fail(r, "killed process not reaped after 10 s");
			return;
		}
		sleep_ms(5);
	}
	reap_ns = now_ns() - t0;
	r_metric(r, "kill_to_reap", (double)reap_ns / 1e6, "ms");
	for (i = 0; i < 200; i++) {
		dev_stats(c->fd, &st);
		if (!st.readers_waiting)
			break;
		sleep_ms(10);
	}
	r_metric(r, "readers_waiting_after", st.readers_waiting, "requests");
	if (st.readers_waiting)
		r_fail(r, "%u read requests still queued after the kill",
		       st.readers_waiting);
	/* the device still delivers to a new reader */
	fd = dev_open(O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		r_fail(r, "reopen: %s", strerror(-fd));
		return;
	}
	dev_set_events(fd, 1, 0);
	if (c->in.ev_rate_hz) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 5000) != 1 || read(fd, &e, sizeof(e)) != sizeof(e))
			r_fail(r, "no event delivered after the kill");
	} else {
		r_dstr(r, "note", "no generator: delivery after the kill not checked");
	}
	close(fd);
}

/* --- many-threads-map-read-close --- */

struct mt_arg {
	size_t bar;
	uint64_t deadline;
	int shared;		/* fd raced with dup2 */
	uint64_t iters, errors;
	char err[128];
};

static void *mt_worker(void *arg)
{
	struct mt_arg *a = arg;
	struct hilbox_stats st;
	struct hilbox_event e;

	while (now_ns() < a->deadline) {
		int fd = open(g_dev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		const volatile uint8_t *p;

		if (fd < 0) {
			a->errors++;
			snprintf(a->err, sizeof(a->err), "open: %s", strerror(errno));
			continue;
		}
		p = mmap(NULL, a->bar, PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			(void)p[0];
			(void)p[a->bar - 1];
		} else {
			a->errors++;
		}
		if (ioctl(fd, HILBOX_IOC_STATS, &st)) {
			a->errors++;
			snprintf(a->err, sizeof(a->err), "stats: %s",
				 strerror(errno));
		}
		if (read(fd, &e, sizeof(e)) < 0 && errno != EAGAIN) {
			a->errors++;
			snprintf(a->err, sizeof(a->err), "read: %s",
				 strerror(errno));
		}
		close(fd);	/* mapping outlives the fd for a moment */
		if (p != MAP_FAILED) {
			(void)p[a->bar / 2];
			munmap((void *)p, a->bar);
		}
		a->iters++;
	}
	return NULL;
}

static void *mt_racer(void *arg)
{
	struct mt_arg *a = arg;
	struct hilbox_event e;
	struct hilbox_info in;

	while (now_ns() < a->deadline) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, a->shared, 0);

		if (p != MAP_FAILED)
			munmap(p, 4096);
		(void)!ioctl(a->shared, HILBOX_IOC_INFO, &in);
		(void)!read(a->shared, &e, sizeof(e));
		a->iters++;
	}
	return NULL;
}

static void sec_many_threads(struct result *r, struct sec_ctx *c)
{
	enum { NW = 6 };
	struct mt_arg args[NW + 1];
	pthread_t th[NW + 1];
	uint64_t t0 = now_ns(), iters = 0, errors = 0, elapsed;
	int i, n = 0;

	memset(args, 0, sizeof(args));
	for (i = 0; i <= NW; i++) {
		args[i].bar = c->in.bar2_size;
		args[i].deadline = t0 + 2000000000ull;
	}
	args[NW].shared = dev_open(O_RDONLY | O_NONBLOCK);
	for (i = 0; i < NW; i++)
		if (!pthread_create(&th[i], NULL, mt_worker, &args[i]))
			n++;
	if (!pthread_create(&th[NW], NULL, mt_racer, &args[NW])) {
		/* swap the racer's descriptor under it */
		while (now_ns() < args[NW].deadline) {
			int fd = dev_open(O_RDONLY | O_NONBLOCK);

			if (fd >= 0) {
				dup2(fd, args[NW].shared);
				close(fd);
			}
			sleep_ms(1);
		}
		pthread_join(th[NW], NULL);
		iters += args[NW].iters;
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		iters += args[i].iters;
		errors += args[i].errors;
		if (args[i].errors)
			r_dstr(r, "last_error", args[i].err);
	}
	if (args[NW].shared >= 0)
		close(args[NW].shared);
	elapsed = now_ns() - t0;
	r_metric(r, "iterations", (double)iters, "iterations");
	r_metric(r, "errors", (double)errors, "errors");
	r_metric(r, "elapsed", (double)elapsed / 1e9, "s");
	if (n < NW)
		r_fail(r, "started only %d threads", n);
	if (errors)
		r_fail(r, "%llu unexpected errors", (unsigned long long)errors);
	if (elapsed > 15000000000ull)
		r_fail(r, "took %.1f s (bound 15 s)", (double)elapsed / 1e9);
}

/* --- bad-ioctls --- */

static void expect_ioctl(struct result *r, const char *what, int fd,
			 unsigned long cmd, void *arg, int want)
{
	int ret = ioctl(fd, cmd, arg);
	int e = ret ? errno : 0;

	r_dstr(r, what, errname(e));
	if (e != want)
		r_fail(r, "%s: %s, expected %s", what, errname(e), errname(want));
}

static void sec_bad_ioctls(struct result *r, struct sec_ctx *c)
{
	struct hilbox_copy_frame cf;
	struct hilbox_events_ctl ec;
	void *kaddr = (void *)0xffff888000000000ull;
	const uint8_t *map;
	int fd = c->fd;

	expect_ioctl(r, "unknown_nr", fd, _IO('H', 0xBF), NULL, ENOTTY);
	expect_ioctl(r, "other_type", fd, _IOR('X', 0xB0, struct hilbox_info),
		     NULL, ENOTTY);
	expect_ioctl(r, "tcgets", fd, TCGETS, NULL, ENOTTY);
	expect_ioctl(r, "info_wrong_size", fd,
		     _IOR('H', HILBOX_IOC_BASE, uint32_t), NULL, EINVAL);
	expect_ioctl(r, "info_wrong_dir", fd,
		     _IOW('H', HILBOX_IOC_BASE, struct hilbox_info), NULL, EINVAL);
	expect_ioctl(r, "info_null", fd, HILBOX_IOC_INFO, NULL, EFAULT);
	expect_ioctl(r, "info_ptr_1", fd, HILBOX_IOC_INFO, (void *)1, EFAULT);
	expect_ioctl(r, "info_kernel_ptr", fd, HILBOX_IOC_INFO, kaddr, EFAULT);
	expect_ioctl(r, "stats_null", fd, HILBOX_IOC_STATS, NULL, EFAULT);
	expect_ioctl(r, "clock_kernel_ptr", fd, HILBOX_IOC_CLOCK, kaddr, EFAULT);
	expect_ioctl(r, "frame_state_null", fd, HILBOX_IOC_FRAME_STATE, NULL,
		     EFAULT);
	expect_ioctl(r, "set_events_null", fd, HILBOX_IOC_SET_EVENTS, NULL,
		     EFAULT);
	memset(&ec, 0, sizeof(ec));
	ec.enable = 2;
	expect_ioctl(r, "set_events_enable_2", fd, HILBOX_IOC_SET_EVENTS, &ec,
		     EINVAL);
	memset(&ec, 0, sizeof(ec));
	ec.flags = 0x80;
	expect_ioctl(r, "set_events_bad_flags", fd, HILBOX_IOC_SET_EVENTS, &ec,
		     EINVAL);
	expect_ioctl(r, "copy_null", fd, HILBOX_IOC_COPY_FRAME, NULL, EFAULT);

	memset(&cf, 0, sizeof(cf));
	cf.buf_len = c->in.fb_bytes;
	expect_ioctl(r, "copy_buf_null", fd, HILBOX_IOC_COPY_FRAME, &cf, EFAULT);
	cf.buf = (uintptr_t)kaddr;
	expect_ioctl(r, "copy_buf_kernel", fd, HILBOX_IOC_COPY_FRAME, &cf, EFAULT);
	map = map_fb(fd, &c->in);
	if (map) {
		/* destination is our own read-only mapping */
		cf.buf = (uintptr_t)map;
		expect_ioctl(r, "copy_buf_readonly_map", fd,
			     HILBOX_IOC_COPY_FRAME, &cf, EFAULT);
		munmap((void *)map, c->in.bar2_size);
	}
	cf.buf = (uintptr_t)&cf;
	cf.buf_len = 0;
	expect_ioctl(r, "copy_len_0", fd, HILBOX_IOC_COPY_FRAME, &cf, EINVAL);
	cf.buf_len = 16;
	cf.flags = 0x100;
	expect_ioctl(r, "copy_bad_flags", fd, HILBOX_IOC_COPY_FRAME, &cf, EINVAL);
	cf.flags = 0;
	cf.reserved[2] = 1;
	expect_ioctl(r, "copy_reserved_set", fd, HILBOX_IOC_COPY_FRAME, &cf,
		     EINVAL);
	/* a short destination is fine: copies min(buf_len, fb_bytes) */
	{
		uint8_t small[48];

		memset(&cf, 0, sizeof(cf));
		cf.buf = (uintptr_t)small;
		cf.buf_len = sizeof(small);
		expect_ioctl(r, "copy_short_buffer", fd, HILBOX_IOC_COPY_FRAME,
			     &cf, 0);
		if (cf.bytes_copied != sizeof(small))
			r_fail(r, "short copy reported %llu bytes",
			       (unsigned long long)cf.bytes_copied);
	}
	/* read() with bad buffers */
	{
		void *volatile nullp = NULL;
		ssize_t n;
		int nb = dev_open(O_RDONLY | O_NONBLOCK);

		if (nb >= 0) {
			dev_set_events(nb, 1, 0);
			sleep_ms(50);
			n = read(nb, nullp, EV_SZ);
			r_dstr(r, "read_null", n < 0 ? errname(errno) : "OK");
			if (n >= 0 || (errno != EFAULT && errno != EAGAIN))
				r_fail(r, "read(NULL): %s", n < 0 ? errname(errno) : "succeeded");
			n = read(nb, kaddr, EV_SZ);
			r_dstr(r, "read_kernel_ptr", n < 0 ? errname(errno) : "OK");
			if (n >= 0 || (errno != EFAULT && errno != EAGAIN))
				r_fail(r, "read(kernel ptr): %s", n < 0 ? errname(errno) : "succeeded");
			n = write(nb, "x", 1);
			r_dstr(r, "write", n < 0 ? errname(errno) : "OK");
			if (n >= 0)
				r_fail(r, "write() to the device succeeded");
			close(nb);
		}
	}
}

/* --- short-read-buffer --- */

static void sec_short_read(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	struct hilbox_event e1, e2;
	char small[EV_SZ];
	struct pollfd p;
	ssize_t n;
	int fd;

	if (!c->in.ev_rate_hz) {
		r_skip(r, "device has no event generator (mouse-rate-hz=0)");
		return;
	}
	fd = dev_open(O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		r_fail(r, "open: %s", strerror(-fd));
		return;
	}
	dev_set_events(fd, 1, HILBOX_EVCTL_FLUSH);
	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, 5000) != 1 || read(fd, &e1, sizeof(e1)) != sizeof(e1)) {
		r_fail(r, "no first event: %s", strerror(errno));
		goto out;
	}
	dev_stats(fd, &s0);
	/* wait until the next record is queued, then read too little */
	if (poll(&p, 1, 5000) != 1) {
		r_fail(r, "no second event");
		goto out;
	}
	n = read(fd, small, EV_SZ - 1);
	r_dstr(r, "read_23_bytes", n < 0 ? errname(errno) : "OK");
	if (n >= 0 || errno != EINVAL)
		r_fail(r, "read of 23 bytes: %s, expected EINVAL",
		       n < 0 ? errname(errno) : "succeeded");
	n = read(fd, small, 1);
	if (n >= 0 || errno != EINVAL)
		r_fail(r, "read of 1 byte: %s, expected EINVAL",
		       n < 0 ? errname(errno) : "succeeded");
	n = read(fd, &e2, sizeof(e2));
	dev_stats(fd, &s1);
	if (n != sizeof(e2)) {
		r_fail(r, "full read after short reads: %s", strerror(errno));
		goto out;
	}
	r_dnum(r, "seq_before", (double)e1.seq);
	r_dnum(r, "seq_after", (double)e2.seq);
	if (e2.seq != e1.seq + 1) {
		uint64_t explained = (s1.ev_dropped - s0.ev_dropped) +
				     (s1.drv_ring_drops - s0.drv_ring_drops);

		if (e2.seq <= e1.seq || e2.seq - e1.seq - 1 > explained)
			r_fail(r, "record lost: seq %llu followed by %llu",
			       (unsigned long long)e1.seq,
			       (unsigned long long)e2.seq);
	}
out:
	close(fd);
}

/* --- hot-unplug (two steps, see INTERFACE.md) --- */

static char g_state_dir[256] = "/run/hilbox-unplug";

struct up_reader {
	int fd;
	int err;
	uint64_t got;
	uint64_t done_ns;
};

static void *up_reader_fn(void *arg)
{
	struct up_reader *u = arg;
	struct hilbox_event e;
	ssize_t n;

	for (;;) {
		n = read(u->fd, &e, sizeof(e));
		if (n == (ssize_t)sizeof(e)) {
			u->got++;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		u->err = n < 0 ? errno : EIO;
		u->done_ns = now_ns();
		return NULL;
	}
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512], tmp[520];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

/* the background part: runs until the device disappears */
static void unplug_daemon(int max_wait_s)
{
	enum { NR = 4, NU = 4 };
	struct up_reader rd[NR];
	struct hilbox_event ubuf[NU];
	struct io_uring_cqe cqes[NU];
	struct hilbox_info in;
	struct uring u;
	pthread_t th[NR];
	const uint8_t *p;
	uint64_t t_gone = 0, deadline, pollrev = 0;
	char txt[4096];
	size_t l = 0;
	int fd, i, n, sig_map, sig_map2, uring_ok, uring_done = 0;
	int uring_err[NU], info_err, mmap_err, read_err, poll_err = 0;
	struct pollfd pfd;
	uint8_t before;

	fd = dev_open(O_RDONLY);
	if (fd < 0 || dev_info(fd, &in)) {
		write_file(g_state_dir, "status", "error open\n");
		_exit(1);
	}
	/* unsubscribed and flushed: the reads stay pending */
	dev_set_events(fd, 0, HILBOX_EVCTL_FLUSH);
	p = map_fb(fd, &in);
	if (!p) {
		write_file(g_state_dir, "status", "error mmap\n");
		_exit(1);
	}
	before = *(const volatile uint8_t *)p;
	for (i = 0; i < NR; i++) {
		rd[i].fd = fd;
		rd[i].err = 0;
		rd[i].got = 0;
		rd[i].done_ns = 0;
		pthread_create(&th[i], NULL, up_reader_fn, &rd[i]);
	}
	uring_ok = !uring_init(&u, 8);
	if (uring_ok) {
		for (i = 0; i < NU; i++)
			uring_queue_read(&u, fd, &ubuf[i], EV_SZ, (unsigned)i,
					 i & 1 ? IOSQE_ASYNC : 0);
		uring_submit(&u);
	}
	for (i = 0; i < NU; i++)
		uring_err[i] = 1;	/* "not completed" */
	sleep_ms(200);
	snprintf(txt, sizeof(txt), "ready %d\n", getpid());
	write_file(g_state_dir, "status", txt);

	/* wait for the unplug: poll reports EPOLLHUP/EPOLLERR */
	deadline = now_ns() + (uint64_t)max_wait_s * 1000000000ull;
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 500) > 0 &&
		    (pfd.revents & (POLLHUP | POLLERR))) {
			pollrev = (uint64_t)pfd.revents;
			t_gone = now_ns();
			break;
		}
		if (uring_ok) {
			/* another subscriber fed us records: queue again */
			n = uring_reap(&u, cqes, NU, 0);
			for (i = 0; i < n; i++) {
				if (cqes[i].res == (int)EV_SZ)
					uring_queue_read(&u, fd,
							 &ubuf[cqes[i].user_data],
							 EV_SZ, cqes[i].user_data,
							 cqes[i].user_data & 1 ?
							 IOSQE_ASYNC : 0);
				else
					uring_err[cqes[i].user_data] = cqes[i].res;
			}
			uring_submit(&u);
		}
		if (now_ns() > deadline) {
			write_file(g_state_dir, "result",
				   "{\"timeout\":true}\n");
			_exit(2);
		}
	}
	/* pending reads must all have completed with ENODEV */
	sleep_ms(500);
	if (uring_ok) {
		for (i = 0; i < NU; i++)
			if (uring_err[i] != 1)
				uring_done++;
		n = uring_reap(&u, cqes, NU, 2000);
		for (i = 0; i < n; i++) {
			uring_err[cqes[i].user_data] = cqes[i].res;
			uring_done++;
		}
		if (uring_done < NU) {
			n = uring_reap(&u, cqes, NU, 2000);
			for (i = 0; i < n; i++) {
				uring_err[cqes[i].user_data] = cqes[i].res;
				uring_done++;
			}
		}
	}
	{
		struct hilbox_info in2;

		info_err = dev_info(fd, &in2) ? errno : 0;
	}
	{
		void *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);

		mmap_err = q == MAP_FAILED ? errno : 0;
		if (q != MAP_FAILED)
			munmap(q, 4096);
	}
	{
		struct hilbox_event e;

		read_err = read(fd, &e, sizeof(e)) < 0 ? errno : 0;
	}
	sig_map = touch_in_child(p, false);
	sig_map2 = touch_in_child(p + in.fb_bytes - 1, false);
	(void)poll_err;

	appendf(txt, sizeof(txt), &l,
		"{\"gone_ns\":%llu,\"poll_revents\":%llu,\"map_byte_before\":%u,"
		"\"map_signal\":\"%s\",\"map_signal_last\":\"%s\","
		"\"info_errno\":\"%s\",\"mmap_errno\":\"%s\",\"read_errno\":\"%s\","
		"\"uring\":%s,\"uring_done\":%d,\"uring_res\":[",
		(unsigned long long)t_gone, (unsigned long long)pollrev, before,
		signame(sig_map), signame(sig_map2), errname(info_err),
		errname(mmap_err), errname(read_err),
		uring_ok ? "true" : "false", uring_done);
	for (i = 0; i < NU; i++)
		appendf(txt, sizeof(txt), &l, "%s\"%s\"", i ? "," : "",
			uring_err[i] == 1 ? "pending" :
			uring_err[i] < 0 ? errname(-uring_err[i]) : "data");
	appendf(txt, sizeof(txt), &l, "],\"readers\":[");
	for (i = 0; i < NR; i++) {
		/* threads still blocked after 2 s count as hung */
		bool done = rd[i].done_ns != 0;

		appendf(txt, sizeof(txt), &l, "%s{\"errno\":\"%s\",\"ms\":%lld}",
			i ? "," : "", done ? errname(rd[i].err) : "pending",
			done ? (long long)(rd[i].done_ns > t_gone ?
				(rd[i].done_ns - t_gone) / 1000000 : 0) : -1LL);
	}
	appendf(txt, sizeof(txt), &l, "]}\n");
	write_file(g_state_dir, "result", txt);
	munmap((void *)p, in.bar2_size);
	if (uring_ok)
		uring_exit(&u);
	close(fd);	/* last reference: the driver frees its state now */
	write_file(g_state_dir, "status", "closed\n");
	_exit(0);
}

static void sec_unplug_prepare(struct result *r, struct sec_ctx *c, int max_wait_s)
{
	char path[512], buf[128] = "";
	uint64_t deadline = now_ns() + 15000000000ull;
	pid_t pid;
	FILE *f;

	mkdir(g_state_dir, 0700);
	snprintf(path, sizeof(path), "%s/status", g_state_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/result", g_state_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/status", g_state_dir);

	pid = fork();
	if (pid < 0) {
		r_fail(r, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		int nul;

		/* detach: survives the SSH session that started us */
		setsid();
		if (fork() > 0)
			_exit(0);
		nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		close(c->fd);
		unplug_daemon(max_wait_s);
	}
	waitpid(pid, NULL, 0);
	while (now_ns() < deadline) {
		f = fopen(path, "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
			if (!strncmp(buf, "ready", 5) || !strncmp(buf, "error", 5))
				break;
		}
		sleep_ms(50);
	}
	buf[strcspn(buf, "\n")] = 0;
	r_dstr(r, "state_dir", g_state_dir);
	r_dstr(r, "status", buf);
	if (strncmp(buf, "ready", 5))
		r_fail(r, "background holder not ready: %s", buf[0] ? buf : "no status");
	else
		r_dnum(r, "holder_pid", atoi(buf + 6));
}

static bool json_has(const char *json, const char *needle)
{
	return strstr(json, needle) != NULL;
}

static int cmd_unplug_check(int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct result rm, rr;
	char path[512], res[4096] = "", status[64] = "";
	struct stat sb;
	FILE *f;
	size_t n;

	r_init(&rm, "security", "unplug-while-mapped",
	       "After hot-unplug/unbind every user mapping of the device is revoked: accesses fault with SIGBUS, further mmap/ioctl/read fail with ENODEV, and nothing touches the removed device.");
	r_init(&rr, "security", "unplug-reads-pending",
	       "Hot-unplug/unbind completes every pending read (blocking, io_uring, poll) with ENODEV/EPOLLHUP promptly and the last close frees the driver state.");
	snprintf(path, sizeof(path), "%s/result", g_state_dir);
	while (now_ns() < deadline) {
		f = fopen(path, "r");
		if (f) {
			n = fread(res, 1, sizeof(res) - 1, f);
			res[n] = 0;
			fclose(f);
			break;
		}
		sleep_ms(100);
	}
	/* wait for the holder's last close */
	snprintf(path, sizeof(path), "%s/status", g_state_dir);
	while (res[0] && now_ns() < deadline) {
		f = fopen(path, "r");
		if (f) {
			if (!fgets(status, sizeof(status), f))
				status[0] = 0;
			fclose(f);
			if (!strncmp(status, "closed", 6))
				break;
		}
		sleep_ms(100);
	}
	res[strcspn(res, "\n")] = 0;
	if (!res[0]) {
		r_fail(&rm, "no result from the holder in %d ms (device not removed?)",
		       timeout_ms);
		r_fail(&rr, "no result from the holder in %d ms (device not removed?)",
		       timeout_ms);
	} else if (json_has(res, "\"timeout\":true")) {
		r_fail(&rm, "the holder gave up waiting for the removal");
		r_fail(&rr, "the holder gave up waiting for the removal");
	} else {
		r_draw(&rm, "holder", res);
		r_draw(&rr, "holder", res);
		if (!json_has(res, "\"map_signal\":\"SIGBUS\"") ||
		    !json_has(res, "\"map_signal_last\":\"SIGBUS\""))
			r_fail(&rm, "access to the mapping after removal did not raise SIGBUS");
		if (!json_has(res, "\"info_errno\":\"ENODEV\""))
			r_fail(&rm, "ioctl after removal did not fail with ENODEV");
		if (!json_has(res, "\"mmap_errno\":\"ENODEV\""))
			r_fail(&rm, "mmap after removal did not fail with ENODEV");
		if (!json_has(res, "\"read_errno\":\"ENODEV\""))
			r_fail(&rr, "read after removal did not fail with ENODEV");
		if (json_has(res, "\"pending\""))
			r_fail(&rr, "a read was still pending after removal");
		if (json_has(res, "\"uring\":true") &&
		    (json_has(res, "\"EINTR\"") || !json_has(res, "\"uring_done\":4")))
			r_fail(&rr, "io_uring reads did not complete with ENODEV");
		if (!json_has(res, "\"ENODEV\",\"ms\""))
			r_fail(&rr, "blocked readers did not return ENODEV");
		if (strncmp(status, "closed", 6))
			r_fail(&rr, "the holder did not close the device");
	}
	r_dstr(&rm, "device_node", stat(g_dev, &sb) ? "gone" : "present");
	r_emit(&rm);
	r_emit(&rr);
	return 0;
}

/* --- case table --- */

typedef void (*sec_fn)(struct result *r, struct sec_ctx *c);

struct sec_case {
	const char *name;
	const char *policy;
	sec_fn fn;
};

static const struct sec_case sec_cases[] = {
	{ "unprivileged-open",
	  "The device node is root-only (0600): an unprivileged process cannot open it read-only or read-write.",
	  sec_unprivileged_open },
	{ "proc-fd-reopen",
	  "A descriptor inherited by an unprivileged process cannot be reopened or upgraded through /proc/self/fd: the node's permissions are checked again.",
	  sec_proc_fd_reopen },
	{ "pidfd-getfd-unprivileged",
	  "An unprivileged process cannot take a root process's device descriptor with pidfd_getfd (ptrace access check).",
	  sec_pidfd_getfd },
	{ "scm-rights-map",
	  "A descriptor passed with SCM_RIGHTS is a capability for exactly what was opened: the unprivileged receiver can map the framebuffer read-only, never writable or private.",
	  sec_scm_rights },
	{ "fork-exec-inherit",
	  "fork() passes the mapping on as the same read-only shared mapping, which stays valid after the parent exits; exec drops mappings and O_CLOEXEC descriptors.",
	  sec_fork_exec },
	{ "write-through-mapping",
	  "The framebuffer mapping is read-only: a write through it kills the writer with SIGSEGV/SIGBUS and never reaches the device.",
	  sec_write_mapping },
	{ "mprotect-write",
	  "A read-only mapping cannot be made writable or executable with mprotect (VM_MAYWRITE/VM_MAYEXEC cleared), whatever the open mode.",
	  sec_mprotect },
	{ "proc-self-mem-write",
	  "/proc/self/mem and process_vm_writev cannot write through the mapping (no FOLL_FORCE path into device memory).",
	  sec_proc_mem },
	{ "map-private",
	  "MAP_PRIVATE mappings are refused with EINVAL (no copy-on-write of device memory).",
	  sec_map_private },
	{ "map-prot-write",
	  "PROT_WRITE/PROT_EXEC mappings are refused: EACCES from the VFS for O_RDONLY descriptors, EPERM from the driver for O_RDWR descriptors.",
	  sec_map_prot_write },
	{ "offset-out-of-range",
	  "Mappings must lie inside BAR2: offsets at or past its end, or ranges crossing it, are refused with EINVAL.",
	  sec_offset_range },
	{ "length-overflow",
	  "Lengths larger than BAR2 and offset+length overflows are refused without mapping anything.",
	  sec_length_overflow },
	{ "mremap-grow",
	  "A mapping cannot be grown with mremap (VM_DONTEXPAND); moving it keeps the same pages.",
	  sec_mremap_grow },
	{ "close-while-mapped",
	  "Closing the descriptor keeps an existing mapping valid (the mapping holds the file); no use-after-free.",
	  sec_close_while_mapped },
	{ "reads-pending-then-killed",
	  "Killing a process with blocking and io_uring reads pending cancels them promptly, leaves no queued request behind and the device keeps working.",
	  sec_reads_killed },
	{ "many-threads-map-read-close",
	  "Concurrent open/mmap/read/ioctl/close from many threads, including a descriptor replaced under a user, completes in bounded time without errors.",
	  sec_many_threads },
	{ "bad-ioctls",
	  "Unknown ioctls fail with ENOTTY, known numbers with a wrong size/direction or bad arguments with EINVAL, bad pointers with EFAULT; nothing crashes.",
	  sec_bad_ioctls },
	{ "short-read-buffer",
	  "read() with a buffer smaller than one record fails with EINVAL and consumes nothing: the next full read returns the next record.",
	  sec_short_read },
};

#define UNPLUG_PREPARE_POLICY \
	"Preparation for hot-unplug: a detached holder maps BAR2 and queues blocking and io_uring reads, then waits for the removal."

static int cmd_security(const char *which, bool list, int max_wait_s)
{
	struct sec_ctx c;
	struct result r;
	size_t i;
	bool any = false;

	if (list) {
		static struct case_list cl;

		cl_begin(&cl, "security");
		for (i = 0; i < sizeof(sec_cases) / sizeof(sec_cases[0]); i++)
			cl_add(&cl, sec_cases[i].name, sec_cases[i].policy, false);
		cl_add(&cl, "unplug-prepare", NULL, true);
		cl_add(&cl, "unplug-check", NULL, true);
		cl_print(&cl);
		return 0;
	}
	if (!strcmp(which, "unplug-check"))
		return cmd_unplug_check(max_wait_s * 1000);

	for (i = 0; i < sizeof(sec_cases) / sizeof(sec_cases[0]) ||
		    !strcmp(which, "unplug-prepare"); i++) {
		const struct sec_case *sc = i < sizeof(sec_cases) / sizeof(sec_cases[0]) ?
					    &sec_cases[i] : NULL;
		bool prep = !strcmp(which, "unplug-prepare");

		if (!prep && strcmp(which, "all") && strcmp(which, sc->name))
			continue;
		any = true;
		r_init(&r, "security", prep ? "unplug-prepare" : sc->name,
		       prep ? UNPLUG_PREPARE_POLICY : sc->policy);
		memset(&c, 0, sizeof(c));
		c.fd = open_checked(&r, O_RDONLY, &c.in);
		if (c.fd >= 0) {
			if (getuid() != 0)
				r_skip(&r, "the probe must run as root (it drops privileges itself)");
			else if (prep)
				sec_unplug_prepare(&r, &c, max_wait_s);
			else
				sc->fn(&r, &c);
			if (c.fd >= 0)
				close(c.fd);
		}
		r_emit(&r);
		if (prep)
			break;
	}
	if (!any) {
		dbg("unknown security case '%s' (try --list)", which);
		return 2;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static void usage(void)
{
	fprintf(stderr,
		"usage: hilbox-probe [--dev /dev/hilboxN] COMMAND [options]\n"
		"  info\n"
		"  verify-frames [--frames N] [--method copy|map|both] [--timeout-s T]\n"
		"  read-events [--count N] [--timeout-ms T] [--flush]\n"
		"  write-mapping\n"
		"  dump-frame --out FILE            (raw rgb24 + FILE.json)\n"
		"  fb-throughput --method map|copy|bytewise|qword|ram [--seconds S]\n"
		"                [--seqlock on|off|both]\n"
		"  events-throughput [--pending N] [--seconds S]\n"
		"                [--mode uring|uring-wq|poll|blocking]\n"
		"  security --list | --case NAME|all [--state-dir D] [--max-wait-s S]\n"
		"           NAME also unplug-prepare, unplug-check\n");
}

int main(int argc, char **argv)
{
	struct probe_opts o;
	const char *cmd;
	int i = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (i + 1 < argc && !strcmp(argv[i], "--dev")) {
		g_dev = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "_exec-check")) {
		if (argc - i < 3)
			return 2;
		return cmd_exec_check(atoi(argv[i]), atoi(argv[i + 1]),
				      atoi(argv[i + 2]));
	}
	opts_init(&o, "uring");
	if (opts_parse(&o, argc, argv, i)) {
		usage();
		return 2;
	}
	if (o.state_dir)
		snprintf(g_state_dir, sizeof(g_state_dir), "%s", o.state_dir);

	if (!strcmp(cmd, "info"))
		cmd_info();
	else if (!strcmp(cmd, "verify-frames"))
		cmd_verify_frames(o.frames ? o.frames : 1,
				  o.method ? o.method : "both", o.timeout_s);
	else if (!strcmp(cmd, "read-events"))
		cmd_read_events(o.count, o.timeout_ms, o.flush);
	else if (!strcmp(cmd, "dump-frame")) {
		if (!o.out) {
			usage();
			return 2;
		}
		cmd_dump_frame(o.out);
	} else if (!strcmp(cmd, "write-mapping")) {
		struct sec_ctx c;
		struct result r;

		r_init(&r, "security", "write-mapping", sec_cases[5].policy);
		memset(&c, 0, sizeof(c));
		c.fd = open_checked(&r, O_RDONLY, &c.in);
		if (c.fd >= 0) {
			sec_write_mapping(&r, &c);
			close(c.fd);
		}
		r_emit(&r);
	} else if (!strcmp(cmd, "fb-throughput")) {
		if (cmd_fb_throughput(o.method ? o.method : "copy", o.seconds,
				      o.seqlock))
			return 2;
	} else if (!strcmp(cmd, "events-throughput")) {
		if (cmd_events_throughput(o.pending, o.seconds, o.mode))
			return 2;
	} else if (!strcmp(cmd, "security")) {
		if (!o.list && !o.sec_case) {
			usage();
			return 2;
		}
		if (o.sec_case && !strcmp(o.sec_case, "unplug-check") &&
		    o.have_timeout_ms)
			o.max_wait_s = (o.timeout_ms + 999) / 1000;
		if (cmd_security(o.sec_case ? o.sec_case : "", o.list,
				 o.max_wait_s))
			return 2;
	} else {
		usage();
		return 2;
	}
	return g_failed;
}
