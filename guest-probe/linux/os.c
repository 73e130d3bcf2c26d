// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * os.c - the Linux probe's device, clocks and errors, and what main asks of
 * the OS (probe_os.h).  The device is /dev/hilboxN of hilbox.ko, its ioctls
 * those of hilbox_uapi.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "probe_linux.h"

const char *g_dev = "/dev/hilbox0";
const char *g_self = "/proc/self/exe";

const struct probe_os_desc os_desc = {
	.id = OS_LINUX,
	.name = "Linux",
	.exe = "hilbox-probe",
	.dev_usage = "/dev/hilboxN",
	.events_usage = "  events-throughput [--pending N] [--seconds S] [--read-records R]\n"
			"                [--mode uring|uring-wq|poll|blocking|ring]\n"
			"  notify-baseline [--count N]     (eventfd write -> wake-up)\n",
	.default_mode = "uring",
	.state_dir = "/run/hilbox-unplug",
	.path_sep = '/',
	.max_pending = 0,
	.no_device_hint = "driver not loaded?",
	.info_op = "HILBOX_IOC_INFO",
	.copy_op = "HILBOX_IOC_COPY_FRAME",
	.events_op = "HILBOX_IOC_SET_EVENTS",
	.map_op = "mmap",
	.map_bar2_op = "mmap of BAR2",
	.read_op = "read",
	.create_errno = true,
	.unplug_prepare_policy = "Preparation for hot-unplug: a detached holder maps BAR2 and queues blocking and io_uring reads, then waits for the removal.",
	.unplug_mapped_policy = "After hot-unplug/unbind every user mapping of the device is revoked: accesses fault with SIGBUS, further mmap/ioctl/read fail with ENODEV, and nothing touches the removed device.",
	.unplug_reads_policy = "Hot-unplug/unbind completes every pending read (blocking, io_uring, poll) with ENODEV/EPOLLHUP promptly and the last close frees the driver state.",
	.unplug_no_result = "(device not removed?)",
};

/* ------------------------------------------------------------------ */
/* process, clocks, errors                                             */

void os_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
}

int os_early_command(const char *cmd, int argc, char **argv, int i)
{
	if (!strncmp(cmd, "_hb-", 4))
		return hardening_command(cmd, argc, argv, i);
	if (strcmp(cmd, "_exec-check"))
		return -1;
	if (argc - i < 3)
		return 2;
	return cmd_exec_check(atoi(argv[i]), atoi(argv[i + 1]), atoi(argv[i + 2]));
}

int os_late_command(const char *cmd, const struct probe_opts *o)
{
	if (!strcmp(cmd, "notify-baseline"))
		return cmd_notify_baseline(o);
	return -1;
}

const char *os_privilege_problem(void)
{
	return getuid() != 0 ? "the probe must run as root (it drops privileges itself)" : NULL;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t os_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void os_sleep_ms(unsigned int ms)
{
	sleep_ms(ms);
}

void os_yield(void)
{
	usleep(50);
}

const char *errname(int e)
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

/* the core's codes for the conditions it tells apart */
static os_err to_os_err(int e)
{
	switch (e) {
	case ETIME: return OS_ETIMEOUT;
	case EAGAIN: return OS_EAGAIN;
	case EINTR: return OS_EINTR;
	default: return (os_err)e;
	}
}

const char *os_strerror(os_err e)
{
	switch (e) {
	case OS_ETIMEOUT: return strerror(ETIME);
	case OS_EAGAIN: return strerror(EAGAIN);
	case OS_EINTR: return strerror(EINTR);
	default: return strerror((int)e);
	}
}

bool os_err_no_device(os_err e)
{
	return e == ENOENT;
}

bool os_replace_file(const char *tmp, const char *path)
{
	return !rename(tmp, path);
}

void os_mkdir(const char *path)
{
	mkdir(path, 0700);
}

/* ------------------------------------------------------------------ */
/* the ioctls                                                          */

int dev_open(int flags)
{
	int fd = open(g_dev, flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int dev_info(int fd, struct hilbox_info *in)
{
	memset(in, 0, sizeof(*in));
	return ioctl(fd, HILBOX_IOC_INFO, in) ? -errno : 0;
}

int dev_stats(int fd, struct hilbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(fd, HILBOX_IOC_STATS, st) ? -errno : 0;
}

int dev_frame_state(int fd, struct hilbox_frame_state *fs)
{
	memset(fs, 0, sizeof(*fs));
	return ioctl(fd, HILBOX_IOC_FRAME_STATE, fs) ? -errno : 0;
}

int dev_clock(int fd, uint64_t *dev_ns)
{
	struct hilbox_clock c;

	memset(&c, 0, sizeof(c));
	if (ioctl(fd, HILBOX_IOC_CLOCK, &c))
		return -errno;
	*dev_ns = c.device_ns;
	return 0;
}

int dev_set_events(int fd, unsigned int enable, unsigned int flags)
{
	struct hilbox_events_ctl c;

	memset(&c, 0, sizeof(c));
	c.enable = enable;
	c.flags = flags;
	return ioctl(fd, HILBOX_IOC_SET_EVENTS, &c) ? -errno : 0;
}

int dev_copy(int fd, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
	     struct hilbox_copy_frame *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->buf = (uintptr_t)buf;
	cf->buf_len = len;
	cf->flags = flags;
	cf->max_retries = max_retries;
	return ioctl(fd, HILBOX_IOC_COPY_FRAME, cf) ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* the device for the core                                             */

os_handle os_open(unsigned int flags, os_err *e)
{
	int fd = dev_open(O_RDONLY | (flags & OS_OPEN_ASYNC ? O_NONBLOCK : 0));

	*e = fd < 0 ? to_os_err(-fd) : 0;
	return fd < 0 ? OS_NO_HANDLE : (os_handle)fd;
}

void os_close(os_handle h)
{
	close((int)h);
}

os_err os_info(os_handle h, struct hilbox_info *in)
{
	return to_os_err(-dev_info((int)h, in));
}

os_err os_stats(os_handle h, struct hilbox_stats *st)
{
	return to_os_err(-dev_stats((int)h, st));
}

os_err os_clock(os_handle h, uint64_t *dev_ns)
{
	return to_os_err(-dev_clock((int)h, dev_ns));
}

os_err os_frame_state(os_handle h, struct hilbox_frame_state *fs)
{
	return to_os_err(-dev_frame_state((int)h, fs));
}

os_err os_set_events(os_handle h, unsigned int enable, unsigned int flags)
{
	return to_os_err(-dev_set_events((int)h, enable, flags));
}

os_err os_copy(os_handle h, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
	       struct hilbox_copy_frame *cf)
{
	return to_os_err(-dev_copy((int)h, buf, len, flags, max_retries, cf));
}
