// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * security.c - the Linux attack primitives on processes and descriptors:
 * unprivileged opens, /proc/self/fd reopen, pidfd_getfd, SCM_RIGHTS,
 * fork + parent exit + exec, a process killed with reads pending, many
 * threads racing open/mmap/read/close; and the table that gives the core
 * all of the Linux primitives (struct os_attacks).
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "probe_linux.h"

const struct os_attacks os_attacks = {
	.unprivileged_open = sec_unprivileged_open,
	.write_through_mapping = sec_write_through,
	.close_while_mapped = sec_close_while_mapped,
	.reads_pending_then_killed = sec_reads_killed,
	.bad_ioctls = sec_bad_ioctls,
	.short_read = sec_short_read,
	.proc_fd_reopen = sec_proc_fd_reopen,
	.pidfd_getfd = sec_pidfd_getfd,
	.scm_rights = sec_scm_rights,
	.fork_exec = sec_fork_exec,
	.mprotect_write = sec_mprotect,
	.proc_self_mem = sec_proc_mem,
	.map_private = sec_map_private,
	.map_prot_write = sec_map_prot_write,
	.map_offset_range = sec_offset_range,
	.map_length_overflow = sec_length_overflow,
	.mremap_grow = sec_mremap_grow,
	.many_threads = sec_many_threads,
	.ring_write = sec_ring_write,
	.ring_fork = sec_ring_fork,
	.ring_passed = sec_ring_passed,
	.ring_bad_setup = sec_ring_bad_setup,
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

void sec_unprivileged_open(struct result *r, struct sec_ctx *c)
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
	int inherited = *(int *)arg;
	struct hilbox_info in;
	char path[64];
	int fd;

	/* the inherited descriptor itself keeps working */
	if (dev_info(inherited, &in))
		cm_fail(m, "inherited fd unusable: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", inherited);
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

void sec_proc_fd_reopen(struct result *r, struct sec_ctx *c)
{
	struct child_msg m;
	int fd = open(g_dev, O_RDONLY);	/* inheritable on purpose */

	if (fd < 0) {
		r_fail(r, "open: %s", strerror(errno));
		return;
	}
	(void)c;
	child_into(r, run_child(ch_proc_reopen, &fd, true, 10000, &m, NULL), &m);
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

void sec_pidfd_getfd(struct result *r, struct sec_ctx *c)
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
	int sock = *(int *)arg;
	struct hilbox_info in;
	const uint8_t *p;
	void *w;
	int fd;

	fd = fd_recv(sock);
	if (fd == -EBADMSG) {
		cm_fail(m, "no descriptor received");
		return;
	}
	if (fd < 0) {
		cm_fail(m, "recvmsg: %s", strerror(-fd));
		return;
	}
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
		/*
		 * Pixel (0,0) of frame n is R = G = n mod 256, B = n / 256 mod 256
		 * (SPEC §4.2). The device renders while we read, so R and G are
		 * read in one aligned 32-bit load, and a load that still caught
		 * a frame change is tried again (three loads 1 ms apart cannot all
		 * land in a render).
		 */
		uint32_t px = 0;
		int tries;

		for (tries = 0; tries < 3; tries++) {
			px = *(const volatile uint32_t *)p;
			if ((px & 0xff) == ((px >> 8) & 0xff))
				break;
			usleep(1000);
		}
		cm_detail(m, "ro_map:OK pixel0_frame16:%u",
			  (px >> 16 & 0xff) << 8 | (px & 0xff));
		if (tries == 3)
			cm_fail(m, "mapped pixel 0 is not a valid frame pixel (R %u, G %u in 3 reads)",
				px & 0xff, px >> 8 & 0xff);
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

void sec_scm_rights(struct result *r, struct sec_ctx *c)
{
	struct child_msg m;
	int sv[2], fd, st = 0, ret;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		r_fail(r, "socketpair: %s", strerror(errno));
		return;
	}
	/* the child forks before the device is opened: no inheritance */
	(void)c;
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
				ch_scm(&sv[1], &cmm);
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
			int e = fd_send(sv[0], fd);

			if (e)
				r_fail(r, "sendmsg: %s", strerror(-e));
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

/* --- fork-exec-inherit --- */

void sec_fork_exec(struct result *r, struct sec_ctx *c)
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

int cmd_exec_check(int fd1, int fd2, int out)
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

void sec_reads_killed(struct result *r, struct sec_ctx *c)
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
	dev_stats(CFD(c), &st);
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
		dev_stats(CFD(c), &st);
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

void sec_many_threads(struct result *r, struct sec_ctx *c)
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
