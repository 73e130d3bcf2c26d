// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * unplug.c - the Linux side of the two-step hot-unplug check
 * (guest-driver/INTERFACE.md): the detached holder that maps BAR2 and, on a
 * second descriptor, the shared-memory event ring (3b), queues blocking and
 * io_uring reads and waits for EPOLLHUP, and the verdict on what it saw.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "probe_linux.h"

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

/* the background part: runs until the device disappears */
static void __attribute__((noreturn)) unplug_daemon(int max_wait_s)
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
	struct evring er;
	int ring_fd, ring_ok = 0, ring_sig = 0, ring_wait_err = 0;

	fd = dev_open(O_RDONLY);
	if (fd < 0 || dev_info(fd, &in)) {
		state_write("status", "error open\n");
		_exit(1);
	}
	/* unsubscribed and flushed: the reads stay pending */
	dev_set_events(fd, 0, HILBOX_EVCTL_FLUSH);
	p = map_fb(fd, &in);
	if (!p) {
		state_write("status", "error mmap\n");
		_exit(1);
	}
	before = *(const volatile uint8_t *)p;
	/* the ring on a descriptor of its own, never subscribed: no records move to it */
	ring_fd = (in.drv_flags & HILBOX_DRV_EV_RING) ? dev_open(O_RDONLY) : -1;
	if (ring_fd >= 0)
		ring_ok = !evring_attach(ring_fd, 64, &er) && er.hdr->magic == HILBOX_EV_RING_MAGIC;
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
	state_write("status", txt);

	/*
	 * wait for the removal: poll reports EPOLLHUP.  EPOLLERR alone is a
	 * link that dropped first (a pulled card: the driver's watchdog may
	 * see the link go before the slot reports the card gone): keep
	 * waiting for the removal itself.
	 */
	deadline = now_ns() + (uint64_t)max_wait_s * 1000000000ull;
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, 500);
		if (n > 0 && (pfd.revents & POLLHUP)) {
			pollrev = (uint64_t)pfd.revents;
			t_gone = now_ns();
			break;
		}
		if (n > 0 && (pfd.revents & POLLERR))
			sleep_ms(10);
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
			state_write("result", "{\"timeout\":true}\n");
			_exit(2);
		}
	}
	/* pending reads must all have completed with ENODEV (EIO: the link dropped first) */
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
	if (ring_ok) {
		ring_sig = touch_in_child((const volatile uint8_t *)er.slots, false);
		ring_wait_err = -evring_wait(&er, 0);
	}
	(void)poll_err;

	appendf(txt, sizeof(txt), &l,
		"{\"gone_ns\":%llu,\"poll_revents\":%llu,\"map_byte_before\":%u,"
		"\"map_signal\":\"%s\",\"map_signal_last\":\"%s\","
		"\"info_errno\":\"%s\",\"mmap_errno\":\"%s\",\"read_errno\":\"%s\","
		"\"ring\":%s,\"ring_signal\":\"%s\",\"ring_wait_errno\":\"%s\","
		"\"uring\":%s,\"uring_done\":%d,\"uring_res\":[",
		(unsigned long long)t_gone, (unsigned long long)pollrev, before,
		signame(sig_map), signame(sig_map2), errname(info_err),
		errname(mmap_err), errname(read_err),
		ring_ok ? "true" : "false", signame(ring_sig), errname(ring_wait_err),
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
	state_write("result", txt);
	munmap((void *)p, in.bar2_size);
	if (ring_ok)
		evring_detach(&er);
	if (ring_fd >= 0)
		close(ring_fd);
	if (uring_ok)
		uring_exit(&u);
	close(fd);	/* last reference: the driver frees its state now */
	state_write("status", "closed\n");
	_exit(0);
}

bool os_holder_start(struct result *r, struct sec_ctx *c, const char *note[2])
{
	pid_t pid = fork();

	(void)note;
	if (pid < 0) {
		r_fail(r, "fork: %s", strerror(errno));
		return false;
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
		close(CFD(c));
		unplug_daemon(c->max_wait_s);
	}
	waitpid(pid, NULL, 0);
	return true;
}

static bool json_has(const char *json, const char *needle)
{
	return strstr(json, needle) != NULL;
}

void os_unplug_judge(struct result *rm, struct result *rr, const char *res, const char *status)
{
	if (!json_has(res, "\"map_signal\":\"SIGBUS\"") ||
	    !json_has(res, "\"map_signal_last\":\"SIGBUS\""))
		r_fail(rm, "access to the mapping after removal did not raise SIGBUS");
	if (json_has(res, "\"ring\":true") && !json_has(res, "\"ring_signal\":\"SIGBUS\""))
		r_fail(rm, "access to the event ring's mapping after removal did not raise SIGBUS");
	if (json_has(res, "\"ring\":true") && !json_has(res, "\"ring_wait_errno\":\"ENODEV\""))
		r_fail(rm, "EV_RING_WAIT after removal did not fail with ENODEV");
	if (!json_has(res, "\"info_errno\":\"ENODEV\""))
		r_fail(rm, "ioctl after removal did not fail with ENODEV");
	if (!json_has(res, "\"mmap_errno\":\"ENODEV\""))
		r_fail(rm, "mmap after removal did not fail with ENODEV");
	if (!json_has(res, "\"read_errno\":\"ENODEV\""))
		r_fail(rr, "read after removal did not fail with ENODEV");
	if (json_has(res, "\"pending\""))
		r_fail(rr, "a read was still pending after removal");
	if (json_has(res, "\"uring\":true") &&
	    (json_has(res, "\"EINTR\"") || !json_has(res, "\"uring_done\":4")))
		r_fail(rr, "io_uring reads did not complete with ENODEV");
	if (!json_has(res, "\"ENODEV\",\"ms\"") && !json_has(res, "\"EIO\",\"ms\""))
		r_fail(rr, "blocked readers did not return ENODEV (or EIO, a link that dropped before the removal)");
	if (strncmp(status, "closed", 6))
		r_fail(rr, "the holder did not close the device");
}

void os_unplug_finish(struct result *rm)
{
	struct stat sb;

	r_dstr(rm, "device_node", stat(g_dev, &sb) ? "gone" : "present");
}
