// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * hilbox-probe.exe - guest-side test and measurement tool for the Windows hilbox driver.
 *
 * The Windows twin of guest-driver/linux/probe.c: the same commands, the same case and metric
 * names, the same output — one JSON object per line on stdout (docs/results-schema.md),
 * diagnostics on stderr.  Exit status: 0 all results pass/skip, 1 a result failed, 2 usage.
 *
 * Where Windows differs, the case says so in its name and policy: mmap is the MAP_FB IOCTL,
 * io_uring is an I/O completion port with N overlapped ReadFile requests, SIGSEGV is an access
 * violation caught by a vectored exception handler, fork/SCM_RIGHTS are DuplicateHandle and
 * handle inheritance, "unprivileged" is a restricted token.
 *
 * Build: scripts/build-windows-probe.mjs (mingw-w64, static, -Wall -Wextra -Werror).
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <winioctl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe-ioctl.h"
#include "probe_core.h"

#define EV_SZ		((DWORD)sizeof(struct hilbox_event))
#define MAX_PENDING	1024

const char *g_dev = "\\\\.\\Hilbox0";
static char g_self[MAX_PATH];
static char g_state_dir[MAX_PATH] = "C:\\Windows\\Temp\\hilbox-unplug";

/* ------------------------------------------------------------------ */
/* small utilities                                                     */

static uint64_t g_qpf;

uint64_t now_ns(void)
{
	LARGE_INTEGER c;

	QueryPerformanceCounter(&c);
	return (uint64_t)((double)c.QuadPart * 1e9 / (double)g_qpf);
}

static uint64_t cpu_ns(void)
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
static const char *errname(DWORD e)
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

/* ------------------------------------------------------------------ */
/* guarded memory access: an access violation becomes a return value  */

/*
 * Two leaf functions with a single memory instruction each.  The vectored exception handler
 * recognises a fault at exactly these instructions, records it and resumes after the
 * instruction; any other exception is not ours and continues the search (and crashes the
 * probe, as it should).
 */
__asm__(".text\n"
	".globl probe_write_byte\n"
	"probe_write_byte:\n"		/* void probe_write_byte(volatile uint8_t *p, uint8_t v) */
	"	movb %dl, (%rcx)\n"
	".globl probe_write_byte_end\n"
	"probe_write_byte_end:\n"
	"	ret\n"
	".globl probe_read_byte\n"
	"probe_read_byte:\n"		/* uint8_t probe_read_byte(const volatile uint8_t *p) */
	"	movzbl (%rcx), %eax\n"
	".globl probe_read_byte_end\n"
	"probe_read_byte_end:\n"
	"	ret\n");

void probe_write_byte(volatile uint8_t *p, uint8_t v);
uint8_t probe_read_byte(const volatile uint8_t *p);
extern const char probe_write_byte_end[], probe_read_byte_end[];

static volatile DWORD t_fault;	/* exception code of the last guarded fault (one thread touches at a time) */

static LONG CALLBACK guard_handler(EXCEPTION_POINTERS *ep)
{
	DWORD code = ep->ExceptionRecord->ExceptionCode;
	CONTEXT *ctx = ep->ContextRecord;

	if (code != EXCEPTION_ACCESS_VIOLATION && code != EXCEPTION_IN_PAGE_ERROR)
		return EXCEPTION_CONTINUE_SEARCH;
	if (ctx->Rip == (DWORD64)(uintptr_t)probe_write_byte) {
		ctx->Rip = (DWORD64)(uintptr_t)probe_write_byte_end;
	} else if (ctx->Rip == (DWORD64)(uintptr_t)probe_read_byte) {
		ctx->Rip = (DWORD64)(uintptr_t)probe_read_byte_end;
		ctx->Rax = 0;
	} else {
		return EXCEPTION_CONTINUE_SEARCH;
	}
	t_fault = code;
	return EXCEPTION_CONTINUE_EXECUTION;
}

static const char *fault_name(DWORD code)
{
	switch (code) {
	case 0: return "none";
	case EXCEPTION_ACCESS_VIOLATION: return "ACCESS_VIOLATION";
	case EXCEPTION_IN_PAGE_ERROR: return "IN_PAGE_ERROR";
	default: return "other";
	}
}

/* Reads or writes one byte; returns the exception code (0: no fault). */
static DWORD touch(const volatile uint8_t *p, bool write, uint8_t *value)
{
	uint8_t v;

	t_fault = 0;
	if (write) {
		probe_write_byte((volatile uint8_t *)p, 0x5a);
	} else {
		v = probe_read_byte(p);
		if (value)
			*value = v;
	}
	return t_fault;
}

/* ------------------------------------------------------------------ */
/* device helpers                                                      */

static HANDLE dev_open_ex(DWORD access, bool overlapped, bool inherit, DWORD *err)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, inherit };
	HANDLE h = CreateFileA(g_dev, access, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING,
			       overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);

	*err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
	return h;
}

static HANDLE dev_open(bool overlapped, DWORD *err)
{
	return dev_open_ex(GENERIC_READ, overlapped, false, err);
}

/* DeviceIoControl that works on synchronous and overlapped handles alike; returns the error. */
static DWORD dev_ioctl(HANDLE h, DWORD code, const void *in, DWORD inlen, void *out, DWORD outlen,
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

static DWORD dev_info(HANDLE h, struct hilbox_info *in)
{
	memset(in, 0, sizeof(*in));
	return dev_ioctl(h, IOCTL_HILBOX_INFO, NULL, 0, in, sizeof(*in), NULL);
}

static DWORD dev_stats(HANDLE h, struct hilbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	return dev_ioctl(h, IOCTL_HILBOX_STATS, NULL, 0, st, sizeof(*st), NULL);
}

static DWORD dev_frame_state(HANDLE h, struct hilbox_frame_state *fs)
{
	memset(fs, 0, sizeof(*fs));
	return dev_ioctl(h, IOCTL_HILBOX_FRAME_STATE, NULL, 0, fs, sizeof(*fs), NULL);
}

static DWORD dev_clock(HANDLE h, uint64_t *dev_ns)
{
	struct hilbox_clock c;
	DWORD e;

	memset(&c, 0, sizeof(c));
	e = dev_ioctl(h, IOCTL_HILBOX_CLOCK, NULL, 0, &c, sizeof(c), NULL);
	if (!e)
		*dev_ns = c.device_ns;
	return e;
}

static DWORD dev_set_events(HANDLE h, unsigned int enable, unsigned int flags)
{
	struct hilbox_events_ctl c;

	memset(&c, 0, sizeof(c));
	c.enable = enable;
	c.flags = flags;
	return dev_ioctl(h, IOCTL_HILBOX_SET_EVENTS, &c, sizeof(c), &c, sizeof(c), NULL);
}

static DWORD dev_copy(HANDLE h, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
		      struct hilbox_copy_frame *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->buf = (uintptr_t)buf;
	cf->buf_len = len;
	cf->flags = flags;
	cf->max_retries = max_retries;
	return dev_ioctl(h, IOCTL_HILBOX_COPY_FRAME, cf, sizeof(*cf), cf, sizeof(*cf), NULL);
}

/* MAP_FB: the read-only view of all of BAR2 in this process, or NULL (error in *err). */
static const uint8_t *map_fb(HANDLE h, DWORD *err)
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

static DWORD unmap_fb(HANDLE h, const uint8_t *p)
{
	struct hilbox_win_unmap u;

	memset(&u, 0, sizeof(u));
	u.user_va = (uintptr_t)p;
	return dev_ioctl(h, IOCTL_HILBOX_UNMAP_FB, &u, sizeof(u), NULL, 0, NULL);
}

/* open + INFO, reporting failure into r; returns the handle or INVALID_HANDLE_VALUE */
static HANDLE open_checked(struct result *r, bool overlapped, struct hilbox_info *in)
{
	DWORD e;
	HANDLE h = dev_open(overlapped, &e);

	if (h == INVALID_HANDLE_VALUE) {
		if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
			r_skip(r, "%s does not exist (driver not installed?)", g_dev);
		else
			r_fail(r, "open %s: %s", g_dev, errname(e));
		return h;
	}
	e = dev_info(h, in);
	if (e) {
		r_fail(r, "IOCTL_HILBOX_INFO: %s", errname(e));
		CloseHandle(h);
		return INVALID_HANDLE_VALUE;
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* child processes (the probe runs itself with a hidden sub-command)   */

struct child {
	PROCESS_INFORMATION pi;
	HANDLE in_w;		/* child's stdin, write end */
	HANDLE out_r;		/* child's stdout, read end */
};

/* Starts `hilbox-probe.exe --dev DEV <args>`; it inherits the pipes and every inheritable handle. */
static DWORD child_start(struct child *c, const char *args, DWORD flags)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, TRUE };
	HANDLE in_r = NULL, out_w = NULL;
	STARTUPINFOA si;
	char cmd[2048];
	DWORD e = 0;

	memset(c, 0, sizeof(*c));
	if (!CreatePipe(&in_r, &c->in_w, &sa, 0) || !CreatePipe(&c->out_r, &out_w, &sa, 0))
		return GetLastError();
	SetHandleInformation(c->in_w, HANDLE_FLAG_INHERIT, 0);
	SetHandleInformation(c->out_r, HANDLE_FLAG_INHERIT, 0);
	snprintf(cmd, sizeof(cmd), "\"%s\" --dev %s %s", g_self, g_dev, args);
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = in_r;
	si.hStdOutput = out_w;
	si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
	if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, flags, NULL, NULL, &si, &c->pi))
		e = GetLastError();
	CloseHandle(in_r);
	CloseHandle(out_w);
	return e;
}

/* Reads the child's stdout until it exits or timeout_ms passes (then it is terminated). */
static DWORD child_finish(struct child *c, char *out, size_t cap, DWORD timeout_ms, DWORD *exit_code)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t len = 0;
	DWORD avail, n, wait = WAIT_TIMEOUT;

	out[0] = 0;
	CloseHandle(c->in_w);
	c->in_w = NULL;
	for (;;) {
		while (PeekNamedPipe(c->out_r, NULL, 0, NULL, &avail, NULL) && avail && len + 1 < cap) {
			if (!ReadFile(c->out_r, out + len, (DWORD)(cap - 1 - len < avail ? cap - 1 - len : avail), &n, NULL))
				break;
			len += n;
			out[len] = 0;
		}
		if (wait == WAIT_OBJECT_0)
			break;
		wait = WaitForSingleObject(c->pi.hProcess, 20);
		if (wait != WAIT_OBJECT_0 && now_ns() > deadline) {
			TerminateProcess(c->pi.hProcess, 0xdead);
			WaitForSingleObject(c->pi.hProcess, 5000);
			*exit_code = 0xdead;
			break;
		}
	}
	if (*exit_code != 0xdead)
		GetExitCodeProcess(c->pi.hProcess, exit_code);
	CloseHandle(c->out_r);
	CloseHandle(c->pi.hThread);
	CloseHandle(c->pi.hProcess);
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = 0;
	return wait == WAIT_OBJECT_0 ? 0 : WAIT_TIMEOUT;
}

/* Waits until the child printed a line starting with `ready`; false on exit/timeout. */
static bool child_wait_ready(struct child *c, DWORD timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char buf[64];
	DWORD avail, n;
	size_t len = 0;

	while (now_ns() < deadline) {
		if (PeekNamedPipe(c->out_r, NULL, 0, NULL, &avail, NULL) && avail) {
			if (!ReadFile(c->out_r, buf + len, 1, &n, NULL))
				return false;
			len += n;
			buf[len] = 0;
			if (strstr(buf, "ready"))
				return true;
			if (len + 2 >= sizeof(buf))
				len = 0;
			continue;
		}
		if (WaitForSingleObject(c->pi.hProcess, 10) == WAIT_OBJECT_0)
			return false;
	}
	return false;
}

/* What a child does with a handle it got: info, map, read, write (must fault), reprotect. */
static int child_use_handle(HANDLE h)
{
	struct hilbox_info in;
	const uint8_t *p;
	DWORD e, f, old = 0;
	uint8_t v = 0;

	e = dev_info(h, &in);
	printf("info=%s ", errname(e));
	p = map_fb(h, &e);
	printf("map=%s ", errname(e));
	if (p) {
		f = touch(p, false, &v);
		printf("read=%s ", fault_name(f));
		f = touch(p, true, NULL);
		printf("write=%s ", fault_name(f));
		e = VirtualProtect((void *)p, 4096, PAGE_READWRITE, &old) ? 0 : GetLastError();
		printf("protect=%s ", errname(e));
		e = unmap_fb(h, p);
		printf("unmap=%s", errname(e));
	}
	printf("\n");
	fflush(stdout);
	return 0;
}

/* Overlapped reads the children and cases keep pending. */
struct pend {
	OVERLAPPED ov;
	struct hilbox_event ev;
	bool busy;
};

static unsigned int pend_reads(HANDLE h, struct pend *p, unsigned int n, bool with_events)
{
	unsigned int i, ok = 0;

	for (i = 0; i < n; i++) {
		memset(&p[i].ov, 0, sizeof(p[i].ov));
		if (with_events)
			p[i].ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
		p[i].busy = ReadFile(h, &p[i].ev, EV_SZ, NULL, &p[i].ov) || GetLastError() == ERROR_IO_PENDING;
		ok += p[i].busy;
	}
	return ok;
}

static int cmd_child(const char *what, int argc, char **argv)
{
	char line[64];
	DWORD e;
	HANDLE h;

	if (!strcmp(what, "use-handle")) {
		/* the handle value comes on the command line (inherited) or on stdin (duplicated) */
		if (argc > 0) {
			h = (HANDLE)(uintptr_t)strtoull(argv[0], NULL, 0);
		} else {
			if (!fgets(line, sizeof(line), stdin))
				return 3;
			h = (HANDLE)(uintptr_t)strtoull(line, NULL, 0);
		}
		return child_use_handle(h);
	}
	if (!strcmp(what, "exit-mapped") || !strcmp(what, "pend-and-wait")) {
		static struct pend p[16];
		struct hilbox_info in;
		const uint8_t *fb = NULL;
		uint8_t v;

		h = dev_open(true, &e);
		if (h == INVALID_HANDLE_VALUE || dev_info(h, &in)) {
			printf("error open %s\n", errname(e));
			return 3;
		}
		dev_set_events(h, 0, HILBOX_EVCTL_FLUSH);	/* unsubscribed: reads stay pending */
		if (!strcmp(what, "exit-mapped")) {
			fb = map_fb(h, &e);
			if (!fb) {
				printf("error map %s\n", errname(e));
				return 3;
			}
			touch(fb, false, &v);
		}
		printf("ready %u pending\n", pend_reads(h, p, 16, true));
		fflush(stdout);
		if (fb)
			ExitProcess(0);	/* mapping, handle and reads still live */
		Sleep(INFINITE);
	}
	dbg("unknown child command %s", what);
	return 2;
}

/* ------------------------------------------------------------------ */
/* framebuffer copies                                                  */

#define E_TIME 0xffff0001u	/* internal: deadline passed */
#define E_AGAIN 0xffff0002u	/* internal: seqlock gave up */

static DWORD map_copy_frame(HANDLE h, const uint8_t *fb, uint8_t *dst, size_t len, enum fb_method m,
			    bool seqlock, unsigned int max_retries, uint64_t deadline, struct copy_out *o)
{
	struct hilbox_frame_state s1, s2;
	uint32_t after = 0;
	DWORD e;

	memset(o, 0, sizeof(*o));
	for (;;) {
		e = dev_frame_state(h, &s1);
		if (e)
			return e;
		if (seqlock && ((s1.frame_seq & 1) || (o->retries && s1.frame_seq == after))) {
			if (deadline && now_ns() > deadline)
				return E_TIME;
			SwitchToThread();
			continue;
		}
		if (raw_copy(dst, fb, len, m, deadline))
			return E_TIME;
		e = dev_frame_state(h, &s2);
		if (e)
			return e;
		o->frame_number = s1.frame_number;
		o->seq1 = s1.frame_seq;
		o->seq2 = s2.frame_seq;
		if (!seqlock || s1.frame_seq == s2.frame_seq)
			return 0;
		if (o->retries++ >= max_retries)
			return E_AGAIN;
		after = s2.frame_seq;
	}
}

static DWORD copy_frame_any(HANDLE h, const uint8_t *fb, uint8_t *dst, const struct hilbox_info *in,
			    enum fb_method m, bool seqlock, uint64_t deadline, struct copy_out *o)
{
	struct hilbox_copy_frame cf;
	DWORD e;

	if (m != M_COPY)
		return map_copy_frame(h, fb, dst, in->fb_bytes, m, seqlock, 64, deadline, o);
	e = dev_copy(h, dst, in->fb_bytes, seqlock ? 0 : HILBOX_COPY_NO_SEQLOCK, 0, &cf);
	if (e)
		return e;
	o->frame_number = cf.frame_number;
	o->seq1 = cf.frame_seq;
	o->seq2 = cf.frame_seq_end;
	o->retries = cf.retries;
	return 0;
}

static const char *ename(DWORD e)
{
	return e == E_TIME ? "timed out" : e == E_AGAIN ? "seqlock gave up" : errname(e);
}

/* ------------------------------------------------------------------ */
/* info                                                                */

static int cmd_info(void)
{
	struct hilbox_info in;
	struct hilbox_stats st;
	struct result r;
	uint64_t clk = 0;
	HANDLE h;

	r_init(&r, "info", "device-info", NULL);
	h = open_checked(&r, false, &in);
	if (h != INVALID_HANDLE_VALUE) {
		bool have_st = !dev_stats(h, &st), have_clk = !dev_clock(h, &clk);

		info_report(&r, &in, have_st ? &st : NULL, have_clk ? &clk : NULL);
		CloseHandle(h);
	}
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* verify-frames (mapped vs IOCTL copy) and dump-frame                 */

static DWORD wait_new_frame(HANDLE h, uint64_t last, uint64_t deadline, uint64_t *cur)
{
	struct hilbox_frame_state fs;
	DWORD e;

	for (;;) {
		e = dev_frame_state(h, &fs);
		if (e)
			return e;
		if (!(fs.frame_seq & 1) && (fs.frame_number != last || last == UINT64_MAX)) {
			*cur = fs.frame_number;
			return 0;
		}
		if (now_ns() > deadline)
			return E_TIME;
		Sleep(1);
	}
}

static void verify_method(struct result *r, HANDLE h, const uint8_t *fb, const struct hilbox_info *in,
			  enum fb_method m, unsigned int frames, uint64_t deadline)
{
	uint8_t *buf = malloc(in->fb_bytes);
	struct verify_tot t = { .t0 = now_ns() };
	uint64_t last = UINT64_MAX, cur;
	struct verify_res v;
	struct copy_out o;
	unsigned int i;
	DWORD e;

	if (!buf) {
		r_fail(r, "out of memory");
		return;
	}
	for (i = 0; i < frames; i++) {
		e = wait_new_frame(h, last, deadline, &cur);
		if (!e)
			e = copy_frame_any(h, fb, buf, in, m, true, deadline, &o);
		if (e) {
			r_fail(r, "%s: frame %u of %u: %s", method_name[m], i, frames, ename(e));
			break;
		}
		t.retries += o.retries;
		if (o.frame_number == last) {	/* raced: same frame again */
			i--;
			continue;
		}
		last = o.frame_number;
		verify_tally(&t, buf, in, o.frame_number, &v);
	}
	verify_report(r, method_name[m], &t);
	free(buf);
}

static int cmd_verify_frames(unsigned int frames, const char *method, unsigned int timeout_s)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ull;
	const uint8_t *fb;
	struct hilbox_info in;
	struct result r;
	DWORD e;
	HANDLE h;

	r_init(&r, "verify", "verify-frames", NULL);
	h = open_checked(&r, false, &in);
	if (h == INVALID_HANDLE_VALUE)
		goto out;
	info_into(&r, &in);
	r_dnum(&r, "frames_requested", frames);
	fb = map_fb(h, &e);
	if (!fb) {
		r_fail(&r, "IOCTL_HILBOX_MAP_FB (%llu bytes): %s", (unsigned long long)in.bar2_size, errname(e));
		goto out_close;
	}
	/* bytes of BAR2 past FB_BYTES read as 0 (SPEC 4.2) */
	bar2_tail_check(&r, fb, &in);
	if (strcmp(method, "map"))
		verify_method(&r, h, fb, &in, M_COPY, frames, deadline);
	if (strcmp(method, "copy"))
		verify_method(&r, h, fb, &in, M_MAP, frames, deadline);
	unmap_fb(h, fb);
out_close:
	CloseHandle(h);
out:
	r_emit(&r);
	return 0;
}

static int cmd_dump_frame(const char *out)
{
	struct hilbox_copy_frame cf;
	struct hilbox_info in;
	struct result r;
	char metapath[MAX_PATH + 8];
	uint8_t *buf = NULL;
	FILE *f;
	DWORD e;
	HANDLE h;

	r_init(&r, "verify", "dump-frame", NULL);
	h = open_checked(&r, false, &in);
	if (h == INVALID_HANDLE_VALUE)
		goto out;
	buf = malloc(in.fb_bytes);
	if (!buf) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	e = dev_copy(h, buf, in.fb_bytes, 0, 256, &cf);
	if (e) {
		r_fail(&r, "IOCTL_HILBOX_COPY_FRAME: %s", errname(e));
		goto out_close;
	}
	dump_verify(&r, buf, &in, &cf);
	f = fopen(out, "wb");
	if (!f) {
		r_fail(&r, "cannot create %s", out);
		goto out_close;
	}
	if (!dump_rows(f, buf, &in)) {
		r_fail(&r, "write %s failed", out);
		goto out_close;
	}
	snprintf(metapath, sizeof(metapath), "%s.json", out);
	if (!dump_meta(metapath, &in, &cf)) {
		r_fail(&r, "write %s failed", metapath);
		goto out_close;
	}
	dump_report(&r, out, metapath, &in, &cf);
out_close:
	CloseHandle(h);
out:
	free(buf);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fb-throughput                                                       */

static void fb_phase(HANDLE h, const uint8_t *src, uint8_t *dst, const struct hilbox_info *in,
		     enum fb_method m, bool seqlock, double seconds, struct tp_stats *s)
{
	uint64_t t0 = now_ns(), c0 = cpu_ns();
	uint64_t deadline = t0 + (uint64_t)(seconds * 1e9), last = UINT64_MAX;
	uint64_t user_bytes0 = g_bytes_read;
	struct copy_out o;
	DWORD e;

	memset(s, 0, sizeof(*s));
	while (now_ns() < deadline) {
		memset(&o, 0, sizeof(o));
		if (m == M_RAM)
			e = raw_copy(dst, src, in->fb_bytes, M_RAM, deadline) ? E_TIME : 0;
		else
			e = copy_frame_any(h, src, dst, in, m, seqlock, deadline, &o);
		if (e == E_TIME) {
			s->retries += o.retries;
			break;
		}
		if (e == E_AGAIN) {
			s->giveups++;
			continue;
		}
		if (e) {
			s->err = e;
			break;
		}
		s->frames++;
		if (m == M_COPY)	/* the driver copied it: count the frame */
			s->bytes += in->fb_bytes;
		s->retries += o.retries;
		if (o.seq1 != o.seq2)
			s->seq_mismatch++;
		if (m != M_RAM && !frame_consistent(dst, in, NULL))
			s->torn++;
		if (m != M_RAM && o.frame_number != last) {
			if (last != UINT64_MAX && o.frame_number > last + 1)
				s->missed += o.frame_number - last - 1;
			s->distinct++;
			last = o.frame_number;
		}
	}
	s->bytes += g_bytes_read - user_bytes0;
	s->wall_ns = now_ns() - t0;
	s->cpu_ns = cpu_ns() - c0;
}

static int cmd_fb_throughput(const char *method, double seconds, const char *seqlock_mode)
{
	struct hilbox_copy_frame cf;
	struct hilbox_info in;
	struct tp_stats s1, s2;
	struct result r;
	enum fb_method m;
	const uint8_t *fb = NULL, *mapped = NULL;
	uint8_t *dst = NULL, *ram = NULL;
	bool both = !strcmp(seqlock_mode, "both");
	bool lock = strcmp(seqlock_mode, "off") != 0;
	char name[64];
	unsigned int i;
	DWORD e;
	HANDLE h;

	for (m = M_COPY; m <= M_RAM; m++)
		if (!strcmp(method, method_name[m]))
			break;
	if (m > M_RAM) {
		dbg("unknown method %s", method);
		return 2;
	}
	snprintf(name, sizeof(name), "fb-%s", method);
	r_init(&r, "throughput", name, NULL);
	h = open_checked(&r, false, &in);
	if (h == INVALID_HANDLE_VALUE)
		goto out;
	info_into(&r, &in);
	r_dstr(&r, "method", method);
	r_dstr(&r, "seqlock", seqlock_mode);
	dst = calloc(1, in.fb_bytes);
	if (!dst) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	if (m == M_RAM) {
		ram = malloc(in.fb_bytes);
		if (!ram || dev_copy(h, ram, in.fb_bytes, 0, 256, &cf)) {
			r_fail(&r, "cannot prepare the RAM frame");
			goto out_close;
		}
		fb = ram;
		both = false;
		lock = false;
	} else if (m != M_COPY) {
		fb = mapped = map_fb(h, &e);
		if (!fb) {
			r_fail(&r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
			goto out_close;
		}
		/* fault the whole mapping in outside the measurement */
		for (i = 0; i < in.fb_bytes; i += 4096)
			(void)((const volatile uint8_t *)fb)[i];
	}
	fb_phase(h, fb, dst, &in, m, lock, seconds, &s1);
	tp_metrics(&r, &s1, "");
	if (s1.err)
		r_fail(&r, "copy failed: %s", errname(s1.err));
	if (lock && s1.torn)
		r_fail(&r, "%llu torn frames despite the seqlock", (unsigned long long)s1.torn);
	if (!s1.frames)
		r_dstr(&r, "note", "no consistent frame: one copy takes longer than a frame period");
	if (both) {
		fb_phase(h, fb, dst, &in, m, false, seconds, &s2);
		tp_metrics(&r, &s2, "_no_seqlock");
		if (s2.err)
			r_fail(&r, "copy without seqlock failed: %s", errname(s2.err));
	}
	if (mapped)
		unmap_fb(h, mapped);
out_close:
	CloseHandle(h);
out:
	free(ram);
	free(dst);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* events                                                              */

/* One overlapped read with a bounded wait; cancelled (and drained) when it does not finish. */
static DWORD read_timed(HANDLE h, void *buf, DWORD len, DWORD timeout_ms, DWORD *got)
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

static int cmd_read_events(uint64_t count, int timeout_ms, bool flush)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct hilbox_event ev[16];
	struct hilbox_info in;
	struct ev_acc a;
	struct result r;
	DWORD e, got, i;
	HANDLE h;

	memset(&a, 0, sizeof(a));
	r_init(&r, "events", "read-events", NULL);
	h = open_checked(&r, true, &in);
	if (h == INVALID_HANDLE_VALUE)
		goto out;
	e = dev_set_events(h, 1, flush ? HILBOX_EVCTL_FLUSH : 0);
	if (e) {
		r_fail(&r, "IOCTL_HILBOX_SET_EVENTS: %s", errname(e));
		goto out_close;
	}
	while (a.n < count) {
		int64_t left = ((int64_t)deadline - (int64_t)now_ns()) / 1000000;
		uint64_t want = count - a.n < 16 ? count - a.n : 16;

		if (left <= 0) {
			r_fail(&r, "timed out after %llu of %llu records", (unsigned long long)a.n,
			       (unsigned long long)count);
			break;
		}
		e = read_timed(h, ev, (DWORD)want * EV_SZ, (DWORD)(left < 500 ? left : 500), &got);
		if (e == WAIT_TIMEOUT)
			continue;
		if (e) {
			r_fail(&r, "ReadFile: %s", errname(e));
			break;
		}
		if (got % EV_SZ) {
			r_fail(&r, "ReadFile returned %lu bytes, not whole records", (unsigned long)got);
			break;
		}
		for (i = 0; i < got / EV_SZ; i++)
			acc_add(&a, &ev[i], 0);
	}
	read_events_report(&r, &a);
out_close:
	CloseHandle(h);
out:
	r_emit(&r);
	return 0;
}

/*
 * events-throughput.  Modes:
 *  iocp (alias uring, the host's name for "inverted call"): N overlapped ReadFile requests
 *       pended on an I/O completion port and re-issued as they complete;
 *  poll: ask the driver how many records wait (STATS ring_level), read them, else sleep 1 ms.
 */
static int cmd_events_throughput(unsigned int pending, double seconds, const char *mode)
{
	size_t cap = (size_t)(seconds * 20000) + 1024;
	struct hilbox_stats st0, st1;
	struct hilbox_info in;
	struct ev_acc a;
	struct result r;
	uint64_t t0, c0, deadline, clk;
	bool iocp = !strcmp(mode, "iocp") || !strcmp(mode, "uring");
	char name[64];
	DWORD e;
	HANDLE h;

	if (!iocp && strcmp(mode, "poll")) {
		dbg("unknown mode %s (iocp|uring|poll)", mode);
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.lat = calloc(cap, sizeof(uint64_t));
	a.lat_cap = a.lat ? cap : 0;
	a.seqs = calloc(cap, sizeof(uint64_t));
	a.seqs_cap = a.seqs ? cap : 0;
	snprintf(name, sizeof(name), "events-%s", iocp ? "iocp" : "poll");
	r_init(&r, "throughput", name, NULL);
	if (!pending)
		pending = 1;
	if (pending > MAX_PENDING)
		pending = MAX_PENDING;
	h = open_checked(&r, true, &in);
	if (h == INVALID_HANDLE_VALUE)
		goto out;
	r_dstr(&r, "mode", iocp ? "iocp" : "poll");
	r_dnum(&r, "pending", pending);
	r_dnum(&r, "ev_rate_hz", in.ev_rate_hz);
	r_dnum(&r, "ev_bundle", in.ev_bundle);
	e = dev_set_events(h, 1, HILBOX_EVCTL_FLUSH);
	if (e) {
		r_fail(&r, "IOCTL_HILBOX_SET_EVENTS: %s", errname(e));
		goto out_close;
	}
	dev_stats(h, &st0);
	t0 = now_ns();
	c0 = cpu_ns();
	deadline = t0 + (uint64_t)(seconds * 1e9);

	if (iocp) {
		struct pend *p = calloc(pending, sizeof(*p));
		OVERLAPPED_ENTRY ent[64];
		HANDLE port = p ? CreateIoCompletionPort(h, NULL, 1, 1) : NULL;
		unsigned int i, inflight = 0;
		ULONG n, k;

		if (!port) {
			r_fail(&r, "CreateIoCompletionPort: %s", errname(GetLastError()));
			free(p);
			goto out_close;
		}
		inflight = pend_reads(h, p, pending, false);
		while (now_ns() < deadline && inflight) {
			if (!GetQueuedCompletionStatusEx(port, ent, 64, &n, 100, FALSE))
				continue;	/* timeout */
			clk = 0;
			dev_clock(h, &clk);	/* time of receipt */
			for (k = 0; k < n; k++) {
				struct pend *q = (struct pend *)ent[k].lpOverlapped;
				LONG status = (LONG)q->ov.Internal;

				if (status >= 0 && ent[k].dwNumberOfBytesTransferred == EV_SZ)
					acc_add(&a, &q->ev, clk);
				else
					a.errors++;
				if (status < 0 && a.errors < 4)
					dbg("overlapped read: NTSTATUS %#lx", (unsigned long)status);
				if (status < 0 && a.errors > 100) {
					q->busy = false;
					inflight--;
					continue;	/* give up on this slot */
				}
				memset(&q->ov, 0, sizeof(q->ov));
				if (!ReadFile(h, &q->ev, EV_SZ, NULL, &q->ov) && GetLastError() != ERROR_IO_PENDING) {
					q->busy = false;
					inflight--;
					a.errors++;
				}
			}
		}
		/* cancel what is still pending and wait for every completion */
		CancelIoEx(h, NULL);
		for (i = 0; inflight && i < 50; i++) {
			if (!GetQueuedCompletionStatusEx(port, ent, 64, &n, 100, FALSE))
				continue;
			inflight -= n < inflight ? n : inflight;
		}
		if (inflight)
			r_fail(&r, "%u reads still pending 5 s after CancelIoEx", inflight);
		CloseHandle(port);
		if (!inflight)
			free(p);	/* with requests outstanding the buffers must stay valid */
	} else {
		struct hilbox_event ev[16];
		struct hilbox_stats st;
		DWORD got, want, i;

		while (now_ns() < deadline) {
			if (dev_stats(h, &st) || !st.ring_level) {
				Sleep(1);
				continue;
			}
			want = st.ring_level < 16 ? st.ring_level : 16;
			if (want > pending)
				want = pending;
			e = read_timed(h, ev, want * EV_SZ, 100, &got);
			if (e) {
				if (e != WAIT_TIMEOUT)
					a.errors++;
				continue;
			}
			clk = 0;
			dev_clock(h, &clk);
			for (i = 0; i < got / EV_SZ; i++)
				acc_add(&a, &ev[i], clk);
		}
	}

	{
		uint64_t wall = now_ns() - t0, cpu = cpu_ns() - c0;

		dev_set_events(h, 0, 0);
		dev_stats(h, &st1);
		ev_tp_report(&r, &a, &st0, &st1, wall, cpu, seconds, true);
	}
out_close:
	CloseHandle(h);
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
	HANDLE h;		/* administrator-opened, synchronous, GENERIC_READ */
};

/* --- unprivileged-open: a restricted token (Administrators deny-only, medium integrity) --- */

static DWORD open_as_standard_user(DWORD access, DWORD *open_err)
{
	BYTE admin[SECURITY_MAX_SID_SIZE], medium[SECURITY_MAX_SID_SIZE];
	DWORD sz = sizeof(admin), e = 0;
	HANDLE tok = NULL, restricted = NULL, imp = NULL, h;
	SID_AND_ATTRIBUTES deny = { 0 };
	TOKEN_MANDATORY_LABEL tml = { 0 };

	*open_err = 0;
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_ASSIGN_PRIMARY, &tok) ||
	    !CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admin, &sz))
		return GetLastError();
	deny.Sid = admin;
	if (!CreateRestrictedToken(tok, DISABLE_MAX_PRIVILEGE, 1, &deny, 0, NULL, 0, NULL, &restricted) ||
	    !DuplicateTokenEx(restricted, TOKEN_IMPERSONATE | TOKEN_QUERY | TOKEN_ADJUST_DEFAULT, NULL,
			      SecurityImpersonation, TokenImpersonation, &imp)) {
		e = GetLastError();
		goto out;
	}
	sz = sizeof(medium);
	if (CreateWellKnownSid(WinMediumLabelSid, NULL, medium, &sz)) {
		tml.Label.Sid = medium;
		tml.Label.Attributes = SE_GROUP_INTEGRITY;
		SetTokenInformation(imp, TokenIntegrityLevel, &tml, sizeof(tml) + GetLengthSid(medium));
	}
	if (!SetThreadToken(NULL, imp)) {
		e = GetLastError();
		goto out;
	}
	h = CreateFileA(g_dev, access, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
	*open_err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
	RevertToSelf();
out:
	if (imp)
		CloseHandle(imp);
	if (restricted)
		CloseHandle(restricted);
	CloseHandle(tok);
	return e;
}

static void sec_unprivileged_open(struct result *r, struct sec_ctx *c)
{
	static const struct { const char *key; DWORD access; } modes[] = {
		{ "read", GENERIC_READ }, { "read_write", GENERIC_READ | GENERIC_WRITE },
	};
	DWORD e, oe;
	size_t i;

	(void)c;
	for (i = 0; i < 2; i++) {
		e = open_as_standard_user(modes[i].access, &oe);
		if (e) {
			r_fail(r, "cannot build the restricted token: %s", errname(e));
			return;
		}
		r_dstr(r, modes[i].key, errname(oe));
		if (!oe)
			r_fail(r, "a standard-user token opened %s (%s)", g_dev, modes[i].key);
		else if (oe != ERROR_ACCESS_DENIED)
			r_fail(r, "standard-user open (%s): %s, expected ERROR_ACCESS_DENIED", modes[i].key, errname(oe));
	}
}

/* --- the child-handle cases --- */

static void expect_child_use(struct result *r, const char *out, DWORD code)
{
	r_dstr(r, "child", out);
	r_dnum(r, "child_exit", code);
	if (code)
		r_fail(r, "child exited with %#lx: %s", (unsigned long)code, out);
	else if (!strstr(out, "info=OK") || !strstr(out, "map=OK"))
		r_fail(r, "the child could not use the handle it was given: %s", out);
	else if (!strstr(out, "read=none"))
		r_fail(r, "reading the child's mapping faulted: %s", out);
	else if (!strstr(out, "write=ACCESS_VIOLATION"))
		r_fail(r, "a write through the child's mapping did not fault: %s", out);
	else if (strstr(out, "protect=OK"))
		r_fail(r, "the child made its mapping writable with VirtualProtect: %s", out);
}

static void sec_duplicate_handle(struct result *r, struct sec_ctx *c)
{
	struct child ch;
	char out[512], line[64];
	DWORD e, code = 0, n;
	HANDLE dup = NULL;

	e = child_start(&ch, "_child use-handle", 0);
	if (e) {
		r_fail(r, "CreateProcess: %s", errname(e));
		return;
	}
	if (!DuplicateHandle(GetCurrentProcess(), c->h, ch.pi.hProcess, &dup, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
		r_fail(r, "DuplicateHandle into the child: %s", errname(GetLastError()));
		TerminateProcess(ch.pi.hProcess, 1);
	} else {
		snprintf(line, sizeof(line), "%llu\n", (unsigned long long)(uintptr_t)dup);
		WriteFile(ch.in_w, line, (DWORD)strlen(line), &n, NULL);
	}
	child_finish(&ch, out, sizeof(out), 30000, &code);
	expect_child_use(r, out, code);
}

static void sec_inherit_handle(struct result *r, struct sec_ctx *c)
{
	struct child ch;
	char out[512], args[96];
	DWORD e, code = 0;
	HANDLE h;

	h = dev_open_ex(GENERIC_READ, false, true, &e);
	if (h == INVALID_HANDLE_VALUE) {
		r_fail(r, "open (inheritable): %s", errname(e));
		return;
	}
	(void)c;
	snprintf(args, sizeof(args), "_child use-handle %llu", (unsigned long long)(uintptr_t)h);
	e = child_start(&ch, args, 0);
	CloseHandle(h);		/* the child holds its own reference now */
	if (e) {
		r_fail(r, "CreateProcess: %s", errname(e));
		return;
	}
	child_finish(&ch, out, sizeof(out), 30000, &code);
	expect_child_use(r, out, code);
}

/* --- close-while-mapped: the duplicate keeps the file object (and mapping) alive --- */

static void sec_close_while_mapped(struct result *r, struct sec_ctx *c)
{
	struct hilbox_info in;
	const uint8_t *p, *q;
	HANDLE h1, h2 = NULL;
	DWORD e, f;
	uint8_t v;

	(void)c;
	h1 = dev_open(false, &e);
	if (h1 == INVALID_HANDLE_VALUE) {
		r_fail(r, "open: %s", errname(e));
		return;
	}
	p = map_fb(h1, &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		CloseHandle(h1);
		return;
	}
	DuplicateHandle(GetCurrentProcess(), h1, GetCurrentProcess(), &h2, 0, FALSE, DUPLICATE_SAME_ACCESS);
	CloseHandle(h1);
	f = touch(p, false, &v);
	r_dstr(r, "read_after_first_close", fault_name(f));
	if (f)
		r_fail(r, "the mapping faulted after closing one of two handles (%s)", fault_name(f));
	e = dev_info(h2, &in);
	r_dstr(r, "info_via_duplicate", errname(e));
	if (e)
		r_fail(r, "IOCTL through the duplicate failed: %s", errname(e));
	e = unmap_fb(h2, p);
	r_dstr(r, "unmap_via_duplicate", errname(e));
	if (e)
		r_fail(r, "unmapping through the duplicate failed: %s", errname(e));
	/* a mapping still present at the last close must be revoked by the driver's cleanup */
	q = map_fb(h2, &e);
	CloseHandle(h2);
	if (q) {
		f = touch(q, false, &v);
		r_dstr(r, "read_after_last_close", fault_name(f));
		if (!f)
			r_fail(r, "a mapping survived the last handle's close (IRP_MJ_CLEANUP must unmap it)");
	}
}

/* --- process-exit-mapped: a process exits holding a mapping and pending reads --- */

static void sec_process_exit(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats st;
	struct child ch;
	const uint8_t *p;
	char out[256];
	DWORD e, code = 0, f;
	uint8_t v;

	e = child_start(&ch, "_child exit-mapped", 0);
	if (e) {
		r_fail(r, "CreateProcess: %s", errname(e));
		return;
	}
	if (!child_wait_ready(&ch, 20000))
		r_fail(r, "the child did not get ready (open/map failed?)");
	e = child_finish(&ch, out, sizeof(out), 15000, &code);
	r_dnum(r, "child_exit", code);
	if (e)
		r_fail(r, "the child holding a mapping and pending reads did not exit within 15 s");
	Sleep(200);
	e = dev_stats(c->h, &st);
	r_dstr(r, "stats_after", errname(e));
	if (e)
		r_fail(r, "IOCTL after the exit: %s", errname(e));
	else if (st.readers_waiting)
		r_fail(r, "%u reads still queued after their process exited", st.readers_waiting);
	p = map_fb(c->h, &e);
	r_dstr(r, "map_after", errname(e));
	if (!p) {
		r_fail(r, "mapping after the child's exit failed: %s", errname(e));
		return;
	}
	f = touch(p, false, &v);
	if (f)
		r_fail(r, "a fresh mapping faulted after the child's exit");
	unmap_fb(c->h, p);
}

/* --- write-through-mapping --- */

static void sec_write_mapping(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	DWORD e, f;
	uint8_t v;

	p = map_fb(c->h, &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		return;
	}
	dev_stats(c->h, &s0);
	f = touch(p, true, NULL);
	dev_stats(c->h, &s1);
	r_dstr(r, "write_exception", fault_name(f));
	r_metric(r, "fb_write_attempts_delta", (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (f != EXCEPTION_ACCESS_VIOLATION)
		r_fail(r, "a write through the mapping did not raise an access violation (%s)", fault_name(f));
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device (FB_WRITE_ATTEMPTS +%llu)",
		       (unsigned long long)(s1.fb_write_attempts - s0.fb_write_attempts));
	f = touch(p, false, &v);
	if (f)
		r_fail(r, "reading the mapping after the write faulted (%s)", fault_name(f));
	unmap_fb(c->h, p);
}

/* --- virtualprotect-write --- */

static void sec_virtualprotect(struct result *r, struct sec_ctx *c)
{
	static const struct { const char *key; DWORD prot; } tries[] = {
		{ "readwrite", PAGE_READWRITE }, { "writecopy", PAGE_WRITECOPY },
		{ "execute_read", PAGE_EXECUTE_READ }, { "execute_readwrite", PAGE_EXECUTE_READWRITE },
	};
	const uint8_t *p;
	DWORD e, old;
	size_t i;

	p = map_fb(c->h, &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		return;
	}
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		e = VirtualProtect((void *)p, 4096, tries[i].prot, &old) ? 0 : GetLastError();
		r_dstr(r, tries[i].key, errname(e));
		if (!e) {
			r_fail(r, "VirtualProtect(%s) succeeded on the framebuffer mapping", tries[i].key);
			VirtualProtect((void *)p, 4096, old, &old);
		}
	}
	if (touch(p, true, NULL) != EXCEPTION_ACCESS_VIOLATION)
		r_fail(r, "the mapping is writable after the VirtualProtect attempts");
	unmap_fb(c->h, p);
}

/* --- write-process-memory --- */

static void sec_write_process_memory(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t v = 0x5a, before, after;
	SIZE_T n = 0;
	DWORD e;

	p = map_fb(c->h, &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		return;
	}
	touch(p + 64, false, &before);
	dev_stats(c->h, &s0);
	e = WriteProcessMemory(GetCurrentProcess(), (void *)(p + 64), &v, 1, &n) ? 0 : GetLastError();
	dev_stats(c->h, &s1);
	touch(p + 64, false, &after);
	r_dstr(r, "write_process_memory", errname(e));
	r_dnum(r, "bytes_written", (double)n);
	r_metric(r, "fb_write_attempts_delta", (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (!e || n)
		r_fail(r, "WriteProcessMemory wrote %llu bytes into the framebuffer mapping", (unsigned long long)n);
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device (FB_WRITE_ATTEMPTS +%llu)",
		       (unsigned long long)(s1.fb_write_attempts - s0.fb_write_attempts));
	(void)before;
	(void)after;
	unmap_fb(c->h, p);
}

/* --- cancelioex-storm --- */

static void sec_cancel_storm(struct result *r, struct sec_ctx *c)
{
	enum { ROUNDS = 200, N = 32 };
	static struct pend p[N];
	struct hilbox_stats st;
	unsigned int round, i, aborted = 0, other = 0, stuck = 0, issued = 0;
	uint64_t t0 = now_ns(), worst = 0;
	DWORD e, n;
	HANDLE h;

	h = dev_open(true, &e);
	if (h == INVALID_HANDLE_VALUE) {
		r_fail(r, "open: %s", errname(e));
		return;
	}
	dev_set_events(h, 0, HILBOX_EVCTL_FLUSH);	/* unsubscribed: every read pends */
	for (round = 0; round < ROUNDS && !stuck; round++) {
		uint64_t t1;

		issued += pend_reads(h, p, N, true);
		t1 = now_ns();
		/* alternate: cancel everything at once, or one by one in reverse order */
		if (round & 1) {
			CancelIoEx(h, NULL);
		} else {
			for (i = N; i-- > 0;)
				CancelIoEx(h, &p[i].ov);
		}
		for (i = 0; i < N; i++) {
			if (!p[i].busy) {
				CloseHandle(p[i].ov.hEvent);
				continue;
			}
			if (!GetOverlappedResultEx(h, &p[i].ov, &n, 2000, FALSE)) {
				e = GetLastError();
				if (e == ERROR_OPERATION_ABORTED)
					aborted++;
				else if (e == WAIT_TIMEOUT)
					stuck++;
				else
					other++;
			} else {
				other++;	/* completed with data although unsubscribed */
			}
			if (!stuck)
				CloseHandle(p[i].ov.hEvent);
		}
		if (now_ns() - t1 > worst)
			worst = now_ns() - t1;
	}
	r_metric(r, "requests", issued, "requests");
	r_metric(r, "cancelled", aborted, "requests");
	r_metric(r, "completed_otherwise", other, "requests");
	r_metric(r, "stuck", stuck, "requests");
	r_metric(r, "worst_round_ms", (double)worst / 1e6, "ms");
	r_metric(r, "seconds", (double)(now_ns() - t0) / 1e9, "s");
	if (stuck)
		r_fail(r, "%u requests did not complete within 2 s of CancelIoEx (round %u)", stuck, round);
	else if (other)
		r_fail(r, "%u cancelled requests completed with something other than ERROR_OPERATION_ABORTED", other);
	if (!stuck) {
		CloseHandle(h);
		Sleep(100);
		e = dev_stats(c->h, &st);
		if (e)
			r_fail(r, "IOCTL after the storm: %s", errname(e));
		else if (st.readers_waiting)
			r_fail(r, "%u requests still queued in the driver after the storm", st.readers_waiting);
	}
	/* with stuck requests the handle and buffers stay: closing would free live IRP buffers */
}

/* --- reads-pending-then-killed --- */

static void sec_reads_killed(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats st;
	struct child ch;
	uint64_t t0;
	DWORD e, w;

	e = child_start(&ch, "_child pend-and-wait", 0);
	if (e) {
		r_fail(r, "CreateProcess: %s", errname(e));
		return;
	}
	if (!child_wait_ready(&ch, 20000))
		r_fail(r, "the child did not queue its reads");
	t0 = now_ns();
	TerminateProcess(ch.pi.hProcess, 9);
	w = WaitForSingleObject(ch.pi.hProcess, 10000);
	r_metric(r, "exit_ms", (double)(now_ns() - t0) / 1e6, "ms");
	if (w != WAIT_OBJECT_0)
		r_fail(r, "the killed process with pending reads did not exit within 10 s (reads not cancellable)");
	CloseHandle(ch.in_w);
	CloseHandle(ch.out_r);
	CloseHandle(ch.pi.hThread);
	CloseHandle(ch.pi.hProcess);
	Sleep(200);
	e = dev_stats(c->h, &st);
	if (e)
		r_fail(r, "IOCTL after the kill: %s", errname(e));
	else if (st.readers_waiting)
		r_fail(r, "%u reads of the killed process still queued", st.readers_waiting);
}

/* --- bad-ioctls --- */

static void expect_ioctl(struct result *r, const char *what, HANDLE h, DWORD code, const void *in, DWORD inlen,
			 void *out, DWORD outlen, DWORD want)
{
	DWORD e = dev_ioctl(h, code, in, inlen, out, outlen, NULL);

	r_dstr(r, what, errname(e));
	if (want == 0xffffffffu ? e == 0 : e != want)
		r_fail(r, "%s: %s, expected %s", what, errname(e), want == 0xffffffffu ? "an error" : errname(want));
}

#define ANY_ERROR 0xffffffffu

static void sec_bad_ioctls(struct result *r, struct sec_ctx *c)
{
	struct hilbox_copy_frame cf;
	struct hilbox_events_ctl ec;
	struct hilbox_info in;
	struct hilbox_win_map m;
	struct hilbox_win_unmap u;
	uint8_t small[8];
	HANDLE h = c->h;
	DWORD e;

	expect_ioctl(r, "unknown_function", h, CTL_CODE(HILBOX_DEVICE_TYPE, 0x8ff, METHOD_BUFFERED, FILE_READ_ACCESS),
		     NULL, 0, NULL, 0, ERROR_INVALID_FUNCTION);
	expect_ioctl(r, "other_device_type", h, CTL_CODE(0x9999, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS),
		     NULL, 0, NULL, 0, ERROR_INVALID_FUNCTION);
	expect_ioctl(r, "method_neither", h, CTL_CODE(HILBOX_DEVICE_TYPE, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS),
		     NULL, 0, (void *)(uintptr_t)0xffff800000000000ull, 128, ANY_ERROR);
	expect_ioctl(r, "info_short_output", h, IOCTL_HILBOX_INFO, NULL, 0, small, sizeof(small), ANY_ERROR);
	expect_ioctl(r, "info_no_output", h, IOCTL_HILBOX_INFO, NULL, 0, NULL, 0, ANY_ERROR);
	expect_ioctl(r, "stats_short_output", h, IOCTL_HILBOX_STATS, NULL, 0, small, sizeof(small), ANY_ERROR);
	expect_ioctl(r, "set_events_no_input", h, IOCTL_HILBOX_SET_EVENTS, NULL, 0, &ec, sizeof(ec), ANY_ERROR);
	memset(&ec, 0, sizeof(ec));
	ec.enable = 1;
	ec.flags = 0x80;
	expect_ioctl(r, "set_events_bad_flags", h, IOCTL_HILBOX_SET_EVENTS, &ec, sizeof(ec), &ec, sizeof(ec),
		     ERROR_INVALID_PARAMETER);
	memset(&ec, 0, sizeof(ec));
	ec.enable = 7;
	expect_ioctl(r, "set_events_bad_enable", h, IOCTL_HILBOX_SET_EVENTS, &ec, sizeof(ec), &ec, sizeof(ec),
		     ERROR_INVALID_PARAMETER);
	memset(&cf, 0, sizeof(cf));
	cf.buf = 0xffff800000000000ull;	/* kernel address */
	cf.buf_len = 4096;
	expect_ioctl(r, "copy_kernel_ptr", h, IOCTL_HILBOX_COPY_FRAME, &cf, sizeof(cf), &cf, sizeof(cf), ANY_ERROR);
	cf.buf = 1;
	expect_ioctl(r, "copy_ptr_1", h, IOCTL_HILBOX_COPY_FRAME, &cf, sizeof(cf), &cf, sizeof(cf), ANY_ERROR);
	cf.buf = (uintptr_t)small;
	cf.buf_len = 0;
	expect_ioctl(r, "copy_zero_len", h, IOCTL_HILBOX_COPY_FRAME, &cf, sizeof(cf), &cf, sizeof(cf),
		     ERROR_INVALID_PARAMETER);
	cf.buf_len = sizeof(small);
	cf.reserved[0] = 1;
	expect_ioctl(r, "copy_reserved_set", h, IOCTL_HILBOX_COPY_FRAME, &cf, sizeof(cf), &cf, sizeof(cf),
		     ERROR_INVALID_PARAMETER);
	memset(&cf, 0, sizeof(cf));
	cf.buf = (uintptr_t)small;
	cf.buf_len = 1ull << 40;	/* far more than the buffer holds */
	expect_ioctl(r, "copy_len_overflow", h, IOCTL_HILBOX_COPY_FRAME, &cf, sizeof(cf), &cf, sizeof(cf), ANY_ERROR);
	memset(&u, 0, sizeof(u));
	u.user_va = 0x10000;
	expect_ioctl(r, "unmap_not_mapped", h, IOCTL_HILBOX_UNMAP_FB, &u, sizeof(u), NULL, 0, ANY_ERROR);
	memset(&m, 0, sizeof(m));
	expect_ioctl(r, "map_short_output", h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), small, sizeof(small), ANY_ERROR);
	m.flags = 0x80;
	expect_ioctl(r, "map_bad_flags", h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), &m, sizeof(m), ANY_ERROR);
	memset(&m, 0, sizeof(m));
	m.offset = 123;	/* not page aligned */
	expect_ioctl(r, "map_unaligned_offset", h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), &m, sizeof(m), ANY_ERROR);
	memset(&m, 0, sizeof(m));
	m.offset = c->in.bar2_size;	/* at the end of BAR2 */
	expect_ioctl(r, "map_offset_out_of_range", h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), &m, sizeof(m), ANY_ERROR);
	memset(&m, 0, sizeof(m));
	m.length = ~0ull;	/* offset + length overflows */
	expect_ioctl(r, "map_length_overflow", h, IOCTL_HILBOX_MAP_FB, &m, sizeof(m), &m, sizeof(m), ANY_ERROR);
	e = dev_info(h, &in);
	r_dstr(r, "info_afterwards", errname(e));
	if (e)
		r_fail(r, "the device stopped answering after the bad IOCTLs: %s", errname(e));
}

/* --- short-read-buffer --- */

static void sec_short_read(struct result *r, struct sec_ctx *c)
{
	uint8_t small[8];
	DWORD e, got;
	HANDLE h;

	(void)c;
	h = dev_open(true, &e);
	if (h == INVALID_HANDLE_VALUE) {
		r_fail(r, "open: %s", errname(e));
		return;
	}
	dev_set_events(h, 1, HILBOX_EVCTL_FLUSH);
	e = read_timed(h, small, sizeof(small), 2000, &got);
	r_dstr(r, "short_read", errname(e));
	if (!e)
		r_fail(r, "a %u-byte read returned %lu bytes instead of failing", (unsigned)sizeof(small), (unsigned long)got);
	else if (e == WAIT_TIMEOUT)
		r_fail(r, "a %u-byte read pended instead of failing at once", (unsigned)sizeof(small));
	dev_set_events(h, 0, 0);
	CloseHandle(h);
}

/* --- hot-unplug, two steps: unplug-prepare (holder), host device_del, unplug-check --- */

static void state_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s\\%s", g_state_dir, name);
}

static void write_state(const char *name, const char *text)
{
	char path[MAX_PATH + 32], tmp[MAX_PATH + 40];
	FILE *f;

	state_path(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING);
}

static bool read_state(const char *name, char *buf, size_t cap)
{
	char path[MAX_PATH + 32];
	size_t n;
	FILE *f;

	state_path(path, sizeof(path), name);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
	buf[strcspn(buf, "\r\n")] = 0;
	return true;
}

/* the background part: maps, pends reads, waits until the device is gone, reports */
static int cmd_unplug_holder(int max_wait_s)
{
	enum { NR = 4 };
	static struct pend rd[NR];
	struct hilbox_info in, in2;
	const uint8_t *p;
	uint64_t deadline, t_gone = 0, done_ns[NR] = { 0 };
	char txt[4096];
	size_t l = 0;
	DWORD e, got, status[NR], info_err, map_err, read_err, f_first, f_last;
	HANDLE h, evs[NR];
	int i;
	uint8_t before = 0, ev[EV_SZ];

	h = dev_open(true, &e);
	if (h == INVALID_HANDLE_VALUE || dev_info(h, &in)) {
		write_state("status", "error open\n");
		return 1;
	}
	dev_set_events(h, 0, HILBOX_EVCTL_FLUSH);	/* unsubscribed: the reads stay pending */
	p = map_fb(h, &e);
	if (!p) {
		write_state("status", "error map\n");
		return 1;
	}
	touch(p, false, &before);
	pend_reads(h, rd, NR, true);
	for (i = 0; i < NR; i++) {
		evs[i] = rd[i].ov.hEvent;
		status[i] = ERROR_IO_PENDING;
	}
	snprintf(txt, sizeof(txt), "ready %lu\n", (unsigned long)GetCurrentProcessId());
	write_state("status", txt);

	/* wait for the removal: a pending read completes, or the device stops answering */
	deadline = now_ns() + (uint64_t)max_wait_s * 1000000000ull;
	for (;;) {
		DWORD w = WaitForMultipleObjects(NR, evs, FALSE, 500);

		if (w < WAIT_OBJECT_0 + NR || dev_info(h, &in2)) {
			t_gone = now_ns();
			break;
		}
		if (now_ns() > deadline) {
			write_state("result", "{\"timeout\":true}\n");
			return 2;
		}
	}
	Sleep(500);
	for (i = 0; i < NR; i++) {
		if (GetOverlappedResultEx(h, &rd[i].ov, &got, 2000, FALSE))
			status[i] = 0;
		else
			status[i] = GetLastError();
		if (status[i] != WAIT_TIMEOUT)
			done_ns[i] = now_ns();
	}
	info_err = dev_info(h, &in2);
	{
		const uint8_t *q = map_fb(h, &map_err);

		if (q)
			unmap_fb(h, q);
	}
	read_err = read_timed(h, ev, EV_SZ, 2000, &got);
	f_first = touch(p, false, NULL);
	f_last = touch(p + in.fb_bytes - 1, false, NULL);
	appendf(txt, sizeof(txt), &l,
		"{\"gone_ns\":%llu,\"map_byte_before\":%u,\"map_fault\":\"%s\",\"map_fault_last\":\"%s\","
		"\"info_error\":\"%s\",\"map_error\":\"%s\",\"read_error\":\"%s\",\"readers\":[",
		(unsigned long long)t_gone, before, fault_name(f_first), fault_name(f_last), errname(info_err),
		errname(map_err), errname(read_err));
	for (i = 0; i < NR; i++)
		appendf(txt, sizeof(txt), &l, "%s{\"error\":\"%s\",\"ms\":%lld}", i ? "," : "",
			status[i] == WAIT_TIMEOUT ? "pending" : errname(status[i]),
			done_ns[i] ? (long long)((done_ns[i] - t_gone) / 1000000) : -1LL);
	appendf(txt, sizeof(txt), &l, "]}\n");
	write_state("result", txt);
	unmap_fb(h, p);
	CloseHandle(h);	/* last reference: the driver frees its state now */
	write_state("status", "closed\n");
	return 0;
}

static void sec_unplug_prepare(struct result *r, int max_wait_s)
{
	STARTUPINFOA si;
	PROCESS_INFORMATION pi;
	char cmd[2048], path[MAX_PATH + 32], buf[128] = "";
	uint64_t deadline = now_ns() + 15000000000ull;
	DWORD flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP;
	bool broke_away = true;

	CreateDirectoryA(g_state_dir, NULL);
	state_path(path, sizeof(path), "status");
	DeleteFileA(path);
	state_path(path, sizeof(path), "result");
	DeleteFileA(path);
	snprintf(cmd, sizeof(cmd), "\"%s\" --dev %s _unplug-holder --state-dir \"%s\" --max-wait-s %d", g_self, g_dev,
		 g_state_dir, max_wait_s);
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	/* outlive the SSH session: leave sshd's job object when allowed */
	if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, flags | CREATE_BREAKAWAY_FROM_JOB, NULL, NULL, &si, &pi)) {
		broke_away = false;
		if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, &pi)) {
			r_fail(r, "CreateProcess: %s", errname(GetLastError()));
			return;
		}
	}
	CloseHandle(pi.hThread);
	CloseHandle(pi.hProcess);
	while (now_ns() < deadline) {
		if (read_state("status", buf, sizeof(buf)) && (!strncmp(buf, "ready", 5) || !strncmp(buf, "error", 5)))
			break;
		Sleep(50);
	}
	r_dstr(r, "state_dir", g_state_dir);
	r_dstr(r, "status", buf);
	r_dstr(r, "job_breakaway", broke_away ? "yes" : "no");
	if (strncmp(buf, "ready", 5))
		r_fail(r, "background holder not ready: %s", buf[0] ? buf : "no status");
	else
		r_dnum(r, "holder_pid", atoi(buf + 6));
}

static int cmd_unplug_check(int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct result rm, rr;
	char res[4096] = "", status[64] = "";

	r_init(&rm, "security", "unplug-while-mapped",
	       "After device removal every user mapping of the device is revoked: accesses raise an access violation, further IOCTLs, MAP_FB and reads fail, and nothing touches the removed device.");
	r_init(&rr, "security", "unplug-reads-pending",
	       "Device removal completes every pending overlapped read with an error promptly and the last CloseHandle frees the driver state.");
	while (now_ns() < deadline && !read_state("result", res, sizeof(res)))
		Sleep(100);
	while (res[0] && now_ns() < deadline) {
		if (read_state("status", status, sizeof(status)) && !strncmp(status, "closed", 6))
			break;
		Sleep(100);
	}
	if (!res[0]) {
		r_fail(&rm, "no result from the holder in %d ms (device not removed? Windows may have vetoed the removal)", timeout_ms);
		r_fail(&rr, "no result from the holder in %d ms (device not removed? Windows may have vetoed the removal)", timeout_ms);
	} else if (strstr(res, "\"timeout\":true")) {
		r_fail(&rm, "the holder gave up waiting for the removal");
		r_fail(&rr, "the holder gave up waiting for the removal");
	} else {
		r_draw(&rm, "holder", res);
		r_draw(&rr, "holder", res);
		if (!strstr(res, "\"map_fault\":\"ACCESS_VIOLATION\"") || !strstr(res, "\"map_fault_last\":\"ACCESS_VIOLATION\""))
			r_fail(&rm, "access to the mapping after removal did not raise an access violation");
		if (strstr(res, "\"info_error\":\"OK\""))
			r_fail(&rm, "an IOCTL after removal succeeded");
		if (strstr(res, "\"map_error\":\"OK\""))
			r_fail(&rm, "MAP_FB after removal succeeded");
		if (strstr(res, "\"read_error\":\"OK\"") || strstr(res, "\"read_error\":\"WAIT_TIMEOUT\""))
			r_fail(&rr, "a read after removal did not fail at once");
		if (strstr(res, "\"pending\""))
			r_fail(&rr, "a read was still pending after removal");
		if (strstr(res, "\"error\":\"OK\""))
			r_fail(&rr, "a pending read completed successfully after removal");
		if (strncmp(status, "closed", 6))
			r_fail(&rr, "the holder did not close the device");
	}
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
	  "The device object is for administrators and SYSTEM only: a standard-user token (Administrators deny-only, medium integrity) cannot open it for read or read-write.",
	  sec_unprivileged_open },
	{ "duplicate-handle-map",
	  "A handle duplicated into another process (DuplicateHandle) is a capability for exactly what was opened: the receiver can map the framebuffer read-only, never writable.",
	  sec_duplicate_handle },
	{ "inherit-handle-map",
	  "An inherited handle gives the child the same read-only access: it can map and read, a write through its mapping faults and VirtualProtect cannot make it writable.",
	  sec_inherit_handle },
	{ "close-while-mapped",
	  "Closing one handle while a duplicate holds the file object keeps the mapping and the file usable; the last close revokes any mapping left (IRP_MJ_CLEANUP), without a crash.",
	  sec_close_while_mapped },
	{ "process-exit-mapped",
	  "A process that exits with a live mapping and pending reads exits promptly; the driver unmaps and cancels on its behalf and the device keeps working (no PROCESS_HAS_LOCKED_PAGES bugcheck).",
	  sec_process_exit },
	{ "write-through-mapping",
	  "The framebuffer mapping is read-only: a write through it raises an access violation in the writer and never reaches the device.",
	  sec_write_mapping },
	{ "virtualprotect-write",
	  "A read-only mapping cannot be made writable, copy-on-write or executable with VirtualProtect.",
	  sec_virtualprotect },
	{ "write-process-memory",
	  "WriteProcessMemory cannot write through the mapping (it cannot lift the protection of the driver's view).",
	  sec_write_process_memory },
	{ "cancelioex-storm",
	  "Pending overlapped reads cancelled with CancelIoEx (all at once or one by one, repeatedly) complete promptly with ERROR_OPERATION_ABORTED and leave nothing queued.",
	  sec_cancel_storm },
	{ "reads-pending-then-killed",
	  "Killing a process with overlapped reads pending cancels them promptly: the process exits, no queued request is left behind and the device keeps working.",
	  sec_reads_killed },
	{ "bad-ioctls",
	  "Unknown IOCTL codes fail with ERROR_INVALID_FUNCTION, known codes with short buffers, bad flags or bad pointers fail cleanly; nothing crashes and the device keeps answering.",
	  sec_bad_ioctls },
	{ "short-read-buffer",
	  "ReadFile with a buffer smaller than one record fails at once instead of pending or returning a partial record.",
	  sec_short_read },
};

#define N_SEC_CASES (sizeof(sec_cases) / sizeof(sec_cases[0]))
#define UNPLUG_PREPARE_POLICY \
	"Preparation for device removal: a detached holder maps BAR2 and pends overlapped reads, then waits for the removal."

static int cmd_security(const char *which, bool list, int max_wait_s)
{
	struct sec_ctx c;
	struct result r;
	bool prep = !strcmp(which, "unplug-prepare"), any = false;
	DWORD e;
	size_t i;

	if (list) {
		static struct case_list cl;

		cl_begin(&cl, "security");
		for (i = 0; i < N_SEC_CASES; i++)
			cl_add(&cl, sec_cases[i].name, sec_cases[i].policy, false);
		cl_add(&cl, "unplug-prepare", NULL, true);
		cl_add(&cl, "unplug-check", NULL, true);
		cl_print(&cl);
		return 0;
	}
	if (!strcmp(which, "unplug-check"))
		return cmd_unplug_check(max_wait_s * 1000);
	for (i = 0; i < N_SEC_CASES || prep; i++) {
		const struct sec_case *sc = prep ? NULL : &sec_cases[i];

		if (!prep && strcmp(which, "all") && strcmp(which, sc->name))
			continue;
		any = true;
		r_init(&r, "security", prep ? "unplug-prepare" : sc->name, prep ? UNPLUG_PREPARE_POLICY : sc->policy);
		memset(&c, 0, sizeof(c));
		c.h = open_checked(&r, false, &c.in);
		if (c.h != INVALID_HANDLE_VALUE) {
			if (prep)
				sec_unplug_prepare(&r, max_wait_s);
			else
				sc->fn(&r, &c);
			CloseHandle(c.h);
		} else if (!r.status) {
			e = GetLastError();
			r_fail(&r, "open: %s", errname(e));
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
		"usage: hilbox-probe.exe [--dev \\\\.\\HilboxN] COMMAND [options]\n"
		"  info\n"
		"  verify-frames [--frames N] [--method copy|map|both] [--timeout-s T]\n"
		"  read-events [--count N] [--timeout-ms T] [--flush]\n"
		"  write-mapping\n"
		"  dump-frame --out FILE            (raw rgb24 + FILE.json)\n"
		"  fb-throughput --method map|copy|bytewise|qword|ram [--seconds S]\n"
		"                [--seqlock on|off|both]\n"
		"  events-throughput [--pending N] [--seconds S] [--mode iocp|uring|poll]\n"
		"  security --list | --case NAME|all [--state-dir D] [--max-wait-s S]\n"
		"           NAME also unplug-prepare, unplug-check\n");
}

int main(int argc, char **argv)
{
	struct probe_opts o;
	const char *cmd;
	int i = 1;
	LARGE_INTEGER f;

	QueryPerformanceFrequency(&f);
	g_qpf = (uint64_t)f.QuadPart;
	GetModuleFileNameA(NULL, g_self, sizeof(g_self));
	AddVectoredExceptionHandler(1, guard_handler);
	SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
	setvbuf(stdout, NULL, _IONBF, 0);
	if (i + 1 < argc && !strcmp(argv[i], "--dev")) {
		g_dev = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "_child"))
		return i < argc ? cmd_child(argv[i], argc - i - 1, argv + i + 1) : 2;
	opts_init(&o, "iocp");
	if (opts_parse(&o, argc, argv, i)) {
		usage();
		return 2;
	}
	if (o.state_dir)
		snprintf(g_state_dir, sizeof(g_state_dir), "%s", o.state_dir);

	if (!strcmp(cmd, "info")) {
		cmd_info();
	} else if (!strcmp(cmd, "verify-frames")) {
		cmd_verify_frames(o.frames ? o.frames : 1, o.method ? o.method : "both", o.timeout_s);
	} else if (!strcmp(cmd, "read-events")) {
		cmd_read_events(o.count, o.timeout_ms, o.flush);
	} else if (!strcmp(cmd, "dump-frame")) {
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
		c.h = open_checked(&r, false, &c.in);
		if (c.h != INVALID_HANDLE_VALUE) {
			sec_write_mapping(&r, &c);
			CloseHandle(c.h);
		}
		r_emit(&r);
	} else if (!strcmp(cmd, "fb-throughput")) {
		if (cmd_fb_throughput(o.method ? o.method : "copy", o.seconds, o.seqlock))
			return 2;
	} else if (!strcmp(cmd, "events-throughput")) {
		if (cmd_events_throughput(o.pending, o.seconds, o.mode))
			return 2;
	} else if (!strcmp(cmd, "security")) {
		if (!o.list && !o.sec_case) {
			usage();
			return 2;
		}
		if (o.sec_case && !strcmp(o.sec_case, "unplug-check") && o.have_timeout_ms)
			o.max_wait_s = (o.timeout_ms + 999) / 1000;
		if (cmd_security(o.sec_case ? o.sec_case : "", o.list, o.max_wait_s))
			return 2;
	} else if (!strcmp(cmd, "_unplug-holder")) {
		return cmd_unplug_holder(o.max_wait_s);
	} else {
		usage();
		return 2;
	}
	return g_failed;
}
