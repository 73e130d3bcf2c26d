// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * proc.c - the Linux probe's child processes: a forked child that reports
 * back through a pipe (optionally as uid/gid 65534), and a child that touches
 * one byte of a mapping so that the parent learns which signal a fault gives.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "probe_linux.h"

void cm_fail(struct child_msg *m, const char *fmt, ...)
{
	va_list ap;

	if (m->status == 1)
		return;
	m->status = 1;
	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
}

void cm_detail(struct child_msg *m, const char *fmt, ...)
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

int drop_privileges(void)
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

/*
 * Run fn in a forked child (optionally as uid/gid 65534).  Returns 0 and
 * fills *m, or -ETIMEDOUT / -ECHILD when the child hung or died.
 */
int run_child(child_fn fn, void *arg, bool unpriv, int timeout_ms,
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
void child_into(struct result *r, int ret, struct child_msg *m)
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
int touch_in_child(const volatile uint8_t *p, bool write)
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

const char *signame(int sig)
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

/* Sends descriptor @fd over the unix socket @sock (SCM_RIGHTS, one data byte): 0 or -errno. */
int fd_send(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	char b = 'x';

	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
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
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

/*
 * Receives one descriptor sent by fd_send() over @sock: the descriptor, or -errno
 * (-EBADMSG: a message that carried none).
 */
int fd_recv(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	char b;
	int fd;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = &b;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	if (recvmsg(sock, &mh, 0) != 1)
		return -errno;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}
