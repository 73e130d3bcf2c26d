// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * os.c - the Windows probe's device, clocks and errors, and what main asks of
 * the OS (probe_os.h).  The device is \\.\HilboxN of hilbox.sys, driven with
 * the IOCTLs of guest-driver/windows/hilbox_ioctl.h; the framebuffer view is
 * IOCTL_HILBOX_MAP_FB.
 */
#include "probe_windows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *g_dev = "\\\\.\\Hilbox0";
char g_self[MAX_PATH];

const struct probe_os_desc os_desc = {
	.id = OS_WINDOWS,
	.name = "Windows",
	.exe = "hilbox-probe.exe",
	.dev_usage = "\\\\.\\HilboxN",
	.events_usage = "  events-throughput [--pending N] [--seconds S] [--mode iocp|uring|poll|ring]\n",
	.default_mode = "iocp",
	.state_dir = "C:\\Windows\\Temp\\hilbox-unplug",
	.path_sep = '\\',
	.max_pending = MAX_PENDING,
	.no_device_hint = "driver not installed?",
	.info_op = "IOCTL_HILBOX_INFO",
	.copy_op = "IOCTL_HILBOX_COPY_FRAME",
	.events_op = "IOCTL_HILBOX_SET_EVENTS",
	.map_op = "IOCTL_HILBOX_MAP_FB",
	.map_bar2_op = "IOCTL_HILBOX_MAP_FB",
	.read_op = "ReadFile",
	.create_errno = false,
	.unplug_prepare_policy = "Preparation for device removal: a detached holder maps BAR2 and pends overlapped reads, then waits for the removal.",
	.unplug_mapped_policy = "After device removal every user mapping of the device is revoked: accesses raise an access violation, further IOCTLs, MAP_FB and reads fail, and nothing touches the removed device.",
	.unplug_reads_policy = "Device removal completes every pending overlapped read with an error promptly and the last CloseHandle frees the driver state.",
	.unplug_no_result = "(device not removed? Windows may have vetoed the removal)",
};

/* ------------------------------------------------------------------ */
/* process, clocks, errors                                             */

static uint64_t g_qpf;

uint64_t now_ns(void)
{
	LARGE_INTEGER c;

	QueryPerformanceCounter(&c);
	return (uint64_t)((double)c.QuadPart * 1e9 / (double)g_qpf);
}

uint64_t cpu_ns(void)
{
	FILETIME cr, ex, k, u;
	ULARGE_INTEGER a, b;

	if (!GetProcessTimes(GetCurrentProcess(), &cr, &ex, &k, &u))
		return 0;
	a.LowPart = k.dwLowDateTime;
	a.HighPart = k.dwHighDateTime;
	b.LowPart = u.dwLowDateTime;
	b.HighPart = u.dwHighDateTime;
	return (a.QuadPart + b.QuadPart) * 100ull;
}

/* Win32 error name ("OK" for 0), stable for checks on the host side. */
const char *errname(DWORD e)
{
	static _Thread_local char other[32];

	switch (e) {
	case 0: return "OK";
	case ERROR_INVALID_FUNCTION: return "ERROR_INVALID_FUNCTION";
	case ERROR_FILE_NOT_FOUND: return "ERROR_FILE_NOT_FOUND";
	case ERROR_PATH_NOT_FOUND: return "ERROR_PATH_NOT_FOUND";
	case ERROR_ACCESS_DENIED: return "ERROR_ACCESS_DENIED";
	case ERROR_INVALID_HANDLE: return "ERROR_INVALID_HANDLE";
	case ERROR_NOT_ENOUGH_MEMORY: return "ERROR_NOT_ENOUGH_MEMORY";
	case ERROR_BAD_UNIT: return "ERROR_BAD_UNIT";
	case ERROR_NOT_READY: return "ERROR_NOT_READY";
	case ERROR_BAD_COMMAND: return "ERROR_BAD_COMMAND";
	case ERROR_BAD_LENGTH: return "ERROR_BAD_LENGTH";
	case ERROR_GEN_FAILURE: return "ERROR_GEN_FAILURE";
	case ERROR_NOT_SUPPORTED: return "ERROR_NOT_SUPPORTED";
	case ERROR_DEV_NOT_EXIST: return "ERROR_DEV_NOT_EXIST";
	case ERROR_INVALID_PARAMETER: return "ERROR_INVALID_PARAMETER";
	case ERROR_INSUFFICIENT_BUFFER: return "ERROR_INSUFFICIENT_BUFFER";
	case ERROR_INVALID_USER_BUFFER: return "ERROR_INVALID_USER_BUFFER";
	case ERROR_NOACCESS: return "ERROR_NOACCESS";
	case ERROR_MORE_DATA: return "ERROR_MORE_DATA";
	case ERROR_INVALID_ADDRESS: return "ERROR_INVALID_ADDRESS";
	case ERROR_OPERATION_ABORTED: return "ERROR_OPERATION_ABORTED";
	case ERROR_IO_PENDING: return "ERROR_IO_PENDING";
	case ERROR_DEVICE_REMOVED: return "ERROR_DEVICE_REMOVED";
	case ERROR_DEVICE_NOT_CONNECTED: return "ERROR_DEVICE_NOT_CONNECTED";
	case ERROR_NOT_FOUND: return "ERROR_NOT_FOUND";
	case ERROR_PARTIAL_COPY: return "ERROR_PARTIAL_COPY";
	case ERROR_TIMEOUT: return "ERROR_TIMEOUT";
	case WAIT_TIMEOUT: return "WAIT_TIMEOUT";
	case ERROR_PRIVILEGE_NOT_HELD: return "ERROR_PRIVILEGE_NOT_HELD";
	case ERROR_BUSY: return "ERROR_BUSY";
	default:
		snprintf(other, sizeof(other), "ERROR_%lu", (unsigned long)e);
		return other;
	}
}

void os_init(void)
{
	LARGE_INTEGER f;

	QueryPerformanceFrequency(&f);
	g_qpf = (uint64_t)f.QuadPart;
	GetModuleFileNameA(NULL, g_self, sizeof(g_self));
	guard_init();
	SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
	setvbuf(stdout, NULL, _IONBF, 0);
}

int os_early_command(const char *cmd, int argc, char **argv, int i)
{
	if (strcmp(cmd, "_child"))
		return -1;
	return i < argc ? cmd_child(argv[i], argc - i - 1, argv + i + 1) : 2;
}

int os_late_command(const char *cmd, const struct probe_opts *o)
{
	if (!strcmp(cmd, "_unplug-holder"))
		return cmd_unplug_holder(o->max_wait_s);
	return -1;
}

const char *os_privilege_problem(void)
{
	return NULL;
}

uint64_t os_cpu_ns(void)
{
	return cpu_ns();
}

void os_sleep_ms(unsigned int ms)
{
	Sleep(ms);
}

void os_yield(void)
{
	SwitchToThread();
}

const char *os_strerror(os_err e)
{
	return e == OS_ETIMEOUT ? "timed out" : e == OS_EAGAIN ? "seqlock gave up" : errname(e);
}

bool os_err_no_device(os_err e)
{
	return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND;
}

/* a copy cannot be interrupted on Windows: the phase ends at its deadline check */
void os_alarm(double seconds)
{
	(void)seconds;
}

bool os_alarm_fired(void)
{
	return false;
}

bool os_replace_file(const char *tmp, const char *path)
{
	return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING);
}

void os_mkdir(const char *path)
{
	CreateDirectoryA(path, NULL);
}

/* ------------------------------------------------------------------ */
/* the IOCTLs                                                          */

HANDLE dev_open_ex(DWORD access, bool overlapped, bool inherit, DWORD *err)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, inherit };
	HANDLE h = CreateFileA(g_dev, access, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING,
			       overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);

	*err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
	return h;
}

HANDLE dev_open(bool overlapped, DWORD *err)
{
	return dev_open_ex(GENERIC_READ, overlapped, false, err);
}

DWORD dev_ioctl(HANDLE h, DWORD code, const void *in, DWORD inlen, void *out, DWORD outlen,
		       DWORD *returned)
{
	static _Thread_local HANDLE ev;
	OVERLAPPED ov;
	DWORD n = 0;
	BOOL ok;

	if (!ev)
		ev = CreateEventA(NULL, TRUE, FALSE, NULL);
	memset(&ov, 0, sizeof(ov));
	ov.hEvent = ev;
	ResetEvent(ev);
	ok = DeviceIoControl(h, code, (void *)in, inlen, out, outlen, &n, &ov);
	if (!ok && GetLastError() == ERROR_IO_PENDING)
		ok = GetOverlappedResult(h, &ov, &n, TRUE);
	if (returned)
		*returned = n;
	return ok ? 0 : GetLastError();
}

DWORD dev_info(HANDLE h, struct hilbox_info *in)
{
	memset(in, 0, sizeof(*in));
	return dev_ioctl(h, IOCTL_HILBOX_INFO, NULL, 0, in, sizeof(*in), NULL);
}

DWORD dev_stats(HANDLE h, struct hilbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	return dev_ioctl(h, IOCTL_HILBOX_STATS, NULL, 0, st, sizeof(*st), NULL);
}

DWORD dev_frame_state(HANDLE h, struct hilbox_frame_state *fs)
{
	memset(fs, 0, sizeof(*fs));
	return dev_ioctl(h, IOCTL_HILBOX_FRAME_STATE, NULL, 0, fs, sizeof(*fs), NULL);
}

DWORD dev_clock(HANDLE h, uint64_t *dev_ns)
{
	struct hilbox_clock c;
	DWORD e;

	memset(&c, 0, sizeof(c));
	e = dev_ioctl(h, IOCTL_HILBOX_CLOCK, NULL, 0, &c, sizeof(c), NULL);
	if (!e)
		*dev_ns = c.device_ns;
	return e;
}

DWORD dev_set_events(HANDLE h, unsigned int enable, unsigned int flags)
{
	struct hilbox_events_ctl c;

	memset(&c, 0, sizeof(c));
	c.enable = enable;
	c.flags = flags;
	return dev_ioctl(h, IOCTL_HILBOX_SET_EVENTS, &c, sizeof(c), &c, sizeof(c), NULL);
}

DWORD dev_copy(HANDLE h, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
		      struct hilbox_copy_frame *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->buf = (uintptr_t)buf;
	cf->buf_len = len;
	cf->flags = flags;
	cf->max_retries = max_retries;
	return dev_ioctl(h, IOCTL_HILBOX_COPY_FRAME, cf, sizeof(*cf), cf, sizeof(*cf), NULL);
}

const uint8_t *map_fb(HANDLE h, DWORD *err)
{
	struct hilbox_win_map m;
	DWORD e;

	memset(&m, 0, sizeof(m));	/* offset 0, length 0 = whole BAR2, flags 0 */
	e = dev_ioctl(h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), &m, sizeof(m), NULL);
	if (!e && !m.user_va)
		e = ERROR_INVALID_ADDRESS;
	if (err)
		*err = e;
	return e ? NULL : (const uint8_t *)(uintptr_t)m.user_va;
}

DWORD unmap_fb(HANDLE h, const uint8_t *p)
{
	struct hilbox_win_unmap u;

	memset(&u, 0, sizeof(u));
	u.user_va = (uintptr_t)p;
	return dev_ioctl(h, IOCTL_HILBOX_UNMAP_FB, &u, sizeof(u), NULL, 0, NULL);
}

DWORD read_timed(HANDLE h, void *buf, DWORD len, DWORD timeout_ms, DWORD *got)
{
	OVERLAPPED ov;
	DWORD e = 0;

	memset(&ov, 0, sizeof(ov));
	ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
	*got = 0;
	if (!ReadFile(h, buf, len, NULL, &ov) && GetLastError() != ERROR_IO_PENDING) {
		e = GetLastError();
	} else if (!GetOverlappedResultEx(h, &ov, got, timeout_ms, FALSE)) {
		e = GetLastError();
		if (e == WAIT_TIMEOUT || e == WAIT_IO_COMPLETION) {
			CancelIoEx(h, &ov);
			if (GetOverlappedResult(h, &ov, got, TRUE))
				e = 0;	/* completed after all */
			else
				e = WAIT_TIMEOUT;
		}
	}
	CloseHandle(ov.hEvent);
	return e;
}

/* ------------------------------------------------------------------ */
/* the device for the core                                             */

os_handle os_open(unsigned int flags, os_err *e)
{
	DWORD err;
	HANDLE h = dev_open(flags & OS_OPEN_ASYNC, &err);

	*e = err;
	return (os_handle)h;
}

void os_close(os_handle h)
{
	CloseHandle((HANDLE)h);
}

os_err os_info(os_handle h, struct hilbox_info *in)
{
	return dev_info((HANDLE)h, in);
}

os_err os_stats(os_handle h, struct hilbox_stats *st)
{
	return dev_stats((HANDLE)h, st);
}

os_err os_clock(os_handle h, uint64_t *dev_ns)
{
	return dev_clock((HANDLE)h, dev_ns);
}

os_err os_frame_state(os_handle h, struct hilbox_frame_state *fs)
{
	return dev_frame_state((HANDLE)h, fs);
}

os_err os_set_events(os_handle h, unsigned int enable, unsigned int flags)
{
	return dev_set_events((HANDLE)h, enable, flags);
}

os_err os_copy(os_handle h, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
	       struct hilbox_copy_frame *cf)
{
	return dev_copy((HANDLE)h, buf, len, flags, max_retries, cf);
}

const uint8_t *os_map(os_handle h, const struct hilbox_info *in, os_err *e)
{
	DWORD err;
	const uint8_t *p = map_fb((HANDLE)h, &err);

	(void)in;
	*e = err;
	return p;
}

void os_unmap(os_handle h, const uint8_t *p, const struct hilbox_info *in)
{
	(void)in;
	unmap_fb((HANDLE)h, p);
}

/* fb-throughput --peer-bar: Windows has no user-space path to another device's BAR */
const uint8_t *os_map_peer(const char *file, size_t len, size_t *maplen, os_err *e)
{
	(void)file;
	(void)len;
	*maplen = 0;
	*e = ERROR_NOT_SUPPORTED;
	return NULL;
}

void os_unmap_peer(const uint8_t *p, size_t maplen)
{
	(void)p;
	(void)maplen;
}

os_err os_read(os_handle h, void *buf, size_t len, unsigned int timeout_ms, size_t *got)
{
	DWORD n = 0, e = read_timed((HANDLE)h, buf, (DWORD)len, timeout_ms, &n);

	*got = n;
	return e == WAIT_TIMEOUT ? OS_ETIMEOUT : e;
}
