// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * ioctl.c - the Linux attack primitives on the ioctl and read interface: bad
 * ioctl numbers, sizes, directions and pointers, read() with bad buffers, and
 * a read too small for one record.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "probe_linux.h"

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

void sec_bad_ioctls(struct result *r, struct sec_ctx *c)
{
	struct hilbox_copy_frame cf;
	struct hilbox_events_ctl ec;
	void *kaddr = (void *)0xffff888000000000ull;
	const uint8_t *map;
	int fd = CFD(c);

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

void sec_short_read(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	struct hilbox_event e1, e2;
	char small[EV_SZ];
	struct pollfd p;
	ssize_t n;
	int fd;

	/* the core skips the case without an event generator (NEED_EVENTS) */
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
