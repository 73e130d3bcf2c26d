// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fb.c - the Linux probe's framebuffer: BAR2 through mmap of the device, a
 * peer device's BAR through sysfs (fb-throughput --peer-bar), and the alarm
 * that interrupts a frame copy outliving an fb-throughput phase.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "probe_linux.h"

const uint8_t *map_fb(int fd, const struct hilbox_info *in)
{
	void *p = mmap(NULL, in->bar2_size, PROT_READ, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

const uint8_t *os_map(os_handle h, const struct hilbox_info *in, os_err *e)
{
	const uint8_t *p = map_fb((int)h, in);

	*e = p ? 0 : (os_err)errno;
	return p;
}

void os_unmap(os_handle h, const uint8_t *p, const struct hilbox_info *in)
{
	(void)h;
	munmap((void *)p, in->bar2_size);
}

/*
 * A sysfs resource file (/sys/bus/pci/devices/<bdf>/resourceN) maps the BAR
 * with remap_pfn_range; the kernel refuses it (EINVAL) for a BAR a driver has
 * claimed, and under lockdown (EPERM).
 */
const uint8_t *os_map_peer(const char *file, size_t len, size_t *maplen, os_err *e)
{
	struct stat st;
	void *p;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		*e = (os_err)errno;
		return NULL;
	}
	if (fstat(fd, &st))
		*e = (os_err)errno;
	else if ((size_t)st.st_size < len)
		*e = EINVAL;	/* smaller than one frame */
	else
		*e = 0;
	if (*e) {
		close(fd);
		return NULL;
	}
	*maplen = (size_t)st.st_size;
	p = mmap(NULL, *maplen, PROT_READ, MAP_SHARED, fd, 0);
	*e = p == MAP_FAILED ? (os_err)errno : 0;
	close(fd);	/* the mapping keeps the file */
	return p == MAP_FAILED ? NULL : p;
}

void os_unmap_peer(const uint8_t *p, size_t maplen)
{
	munmap((void *)p, maplen);
}

static volatile sig_atomic_t g_alarm;

static void on_alarm(int sig)
{
	(void)sig;
	g_alarm = 1;
}

void os_alarm(double seconds)
{
	struct itimerval it;
	struct sigaction sa;

	memset(&it, 0, sizeof(it));
	if (seconds > 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt the copy */
		sigaction(SIGALRM, &sa, NULL);
		g_alarm = 0;
		it.it_value.tv_sec = (time_t)seconds;
		it.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			it.it_value.tv_usec = 1;
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

bool os_alarm_fired(void)
{
	return g_alarm;
}
