/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe_windows.h - what the Windows files of the probe share among themselves.
 *
 *   os.c        the device (DeviceIoControl, MAP_FB), clocks, errors, the OS
 *               description, main's hooks
 *   guard.c     guarded one-byte loads and stores: an access violation becomes a value
 *   child.c     child processes (the probe started again with _child ...), pending reads
 *   events.c    the events-throughput modes (I/O completion port, STATS poll)
 *   security.c  the attack primitives and their table
 *   unplug.c    the device-removal holder and its verdict
 *
 * Where Windows differs, a case says so in its name and policy: mmap is the
 * MAP_FB IOCTL, io_uring is an I/O completion port with N overlapped ReadFile
 * requests, SIGSEGV is an access violation caught by a vectored exception
 * handler, fork/SCM_RIGHTS are DuplicateHandle and handle inheritance,
 * "unprivileged" is a restricted token.  The IOCTL codes and the MAP_FB structs
 * are the driver's own (guest-driver/windows/hilbox_ioctl.h).
 */
#ifndef HILBOX_PROBE_WINDOWS_H
#define HILBOX_PROBE_WINDOWS_H

#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <winioctl.h>
#include <stdbool.h>
#include <stdint.h>

#include "hilbox_ioctl.h"
#include "probe_core.h"
#include "probe_os.h"

#define EV_SZ		((DWORD)sizeof(struct hilbox_event))
#define MAX_PENDING	1024

/* the runner's handle as a HANDLE */
#define CH(c)		((HANDLE)(c)->h)

extern char g_self[MAX_PATH];

/* os.c */
const char *errname(DWORD e);
uint64_t cpu_ns(void);
HANDLE dev_open_ex(DWORD access, bool overlapped, bool inherit, DWORD *err);
HANDLE dev_open(bool overlapped, DWORD *err);
/* DeviceIoControl on synchronous and overlapped handles alike; returns the error */
DWORD dev_ioctl(HANDLE h, DWORD code, const void *in, DWORD inlen, void *out, DWORD outlen,
		DWORD *returned);
DWORD dev_info(HANDLE h, struct hilbox_info *in);
DWORD dev_stats(HANDLE h, struct hilbox_stats *st);
DWORD dev_frame_state(HANDLE h, struct hilbox_frame_state *fs);
DWORD dev_clock(HANDLE h, uint64_t *dev_ns);
DWORD dev_set_events(HANDLE h, unsigned int enable, unsigned int flags);
DWORD dev_copy(HANDLE h, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
	       struct hilbox_copy_frame *cf);
/* MAP_FB: the read-only view of all of BAR2 in this process, or NULL (error in *err) */
const uint8_t *map_fb(HANDLE h, DWORD *err);
DWORD unmap_fb(HANDLE h, const uint8_t *p);
/* one overlapped read with a bounded wait; cancelled (and drained) when it does not finish */
DWORD read_timed(HANDLE h, void *buf, DWORD len, DWORD timeout_ms, DWORD *got);

/* guard.c */
void guard_init(void);
/* reads or writes one byte; returns the exception code (0: no fault) */
DWORD touch(const volatile uint8_t *p, bool write, uint8_t *value);
const char *fault_name(DWORD code);

/* child.c */
struct child {
	PROCESS_INFORMATION pi;
	HANDLE in_w;		/* child's stdin, write end */
	HANDLE out_r;		/* child's stdout, read end */
};

/* starts `hilbox-probe.exe --dev DEV <args>`; it inherits the pipes and every inheritable handle */
DWORD child_start(struct child *c, const char *args, DWORD flags);
/* reads the child's stdout until it exits or timeout_ms passes (then it is terminated) */
DWORD child_finish(struct child *c, char *out, size_t cap, DWORD timeout_ms, DWORD *exit_code);
/* waits until the child printed a line starting with `ready`; false on exit/timeout */
bool child_wait_ready(struct child *c, DWORD timeout_ms);
int cmd_child(const char *what, int argc, char **argv);

/* overlapped reads the children and cases keep pending */
struct pend {
	OVERLAPPED ov;
	struct hilbox_event ev;
	bool busy;
};

unsigned int pend_reads(HANDLE h, struct pend *p, unsigned int n, bool with_events);

/* unplug.c: the detached holder (`_unplug-holder`) */
int cmd_unplug_holder(int max_wait_s);

#endif /* HILBOX_PROBE_WINDOWS_H */
