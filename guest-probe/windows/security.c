// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * security.c - the Windows attack primitives: a restricted token, handles
 * duplicated into and inherited by children, closes and process exits under a
 * mapping, writes through it (directly, after VirtualProtect, with
 * WriteProcessMemory), CancelIoEx storms, killed readers, bad IOCTLs and short
 * reads; and the table that gives them to the core (struct os_attacks).
 */
#include "probe_windows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (!DuplicateHandle(GetCurrentProcess(), CH(c), ch.pi.hProcess, &dup, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
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
	e = dev_stats(CH(c), &st);
	r_dstr(r, "stats_after", errname(e));
	if (e)
		r_fail(r, "IOCTL after the exit: %s", errname(e));
	else if (st.readers_waiting)
		r_fail(r, "%u reads still queued after their process exited", st.readers_waiting);
	p = map_fb(CH(c), &e);
	r_dstr(r, "map_after", errname(e));
	if (!p) {
		r_fail(r, "mapping after the child's exit failed: %s", errname(e));
		return;
	}
	f = touch(p, false, &v);
	if (f)
		r_fail(r, "a fresh mapping faulted after the child's exit");
	unmap_fb(CH(c), p);
}

/* --- write-through-mapping --- */

static void sec_write_mapping(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	DWORD e, f;
	uint8_t v;

	p = map_fb(CH(c), &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		return;
	}
	dev_stats(CH(c), &s0);
	f = touch(p, true, NULL);
	dev_stats(CH(c), &s1);
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
	unmap_fb(CH(c), p);
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

	p = map_fb(CH(c), &e);
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
	unmap_fb(CH(c), p);
}

/* --- write-process-memory --- */

static void sec_write_process_memory(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t v = 0x5a, before, after;
	SIZE_T n = 0;
	DWORD e;

	p = map_fb(CH(c), &e);
	if (!p) {
		r_fail(r, "IOCTL_HILBOX_MAP_FB: %s", errname(e));
		return;
	}
	touch(p + 64, false, &before);
	dev_stats(CH(c), &s0);
	e = WriteProcessMemory(GetCurrentProcess(), (void *)(p + 64), &v, 1, &n) ? 0 : GetLastError();
	dev_stats(CH(c), &s1);
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
	unmap_fb(CH(c), p);
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
		e = dev_stats(CH(c), &st);
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
	e = dev_stats(CH(c), &st);
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
	HANDLE h = CH(c);
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

/* --- the shared-memory event ring (INTERFACE.md 3b, Windows) --- */

/* A ring on c's handle, its view in *hdr; 0 or the DeviceIoControl error. */
static DWORD ring_setup(HANDLE h, unsigned int records, HANDLE ev, const struct hilbox_ev_ring_hdr **hdr)
{
	struct hilbox_win_ev_ring setup;
	DWORD e;

	memset(&setup, 0, sizeof(setup));
	setup.records = records;
	setup.event = (uint64_t)(uintptr_t)ev;
	e = dev_ioctl(h, IOCTL_HILBOX_EV_RING, &setup, sizeof(setup), &setup, sizeof(setup), NULL);
	if (!e && hdr)
		*hdr = (const struct hilbox_ev_ring_hdr *)(uintptr_t)setup.user_va;
	return e;
}

static bool ring_hdr_intact(const struct hilbox_ev_ring_hdr *hdr, unsigned int records)
{
	return hdr->magic == HILBOX_EV_RING_MAGIC && hdr->version == HILBOX_EV_RING_VERSION &&
	       hdr->records == records && hdr->slot_size == sizeof(struct hilbox_ev_slot);
}

/* A fresh overlapped handle for a ring case, or INVALID_HANDLE_VALUE (the case skipped or failed). */
static HANDLE ring_case_open(struct result *r, struct sec_ctx *c)
{
	HANDLE h;
	DWORD e;

	if (!(c->in.drv_flags & HILBOX_DRV_EV_RING)) {
		r_skip(r, "the driver offers no shared-memory ring (HILBOX_DRV_EV_RING)");
		return INVALID_HANDLE_VALUE;
	}
	h = dev_open(true, &e);
	if (h == INVALID_HANDLE_VALUE)
		r_fail(r, "open: %s", errname(e));
	return h;
}

static void sec_ring_write(struct result *r, struct sec_ctx *c)
{
	static const DWORD prots[] = { PAGE_READWRITE, PAGE_WRITECOPY, PAGE_EXECUTE_READWRITE };
	const struct hilbox_ev_ring_hdr *hdr = NULL;
	uint8_t v = 0x5a;
	SIZE_T n = 0;
	DWORD e, f, old;
	HANDLE h;
	size_t i;

	h = ring_case_open(r, c);
	if (h == INVALID_HANDLE_VALUE)
		return;
	e = ring_setup(h, 64, NULL, &hdr);
	r_dstr(r, "setup", errname(e));
	if (e) {
		r_fail(r, "IOCTL_HILBOX_EV_RING: %s", errname(e));
		CloseHandle(h);
		return;
	}
	f = touch((const volatile uint8_t *)hdr, true, NULL);
	r_dstr(r, "write_exception", fault_name(f));
	if (f != EXCEPTION_ACCESS_VIOLATION)
		r_fail(r, "a write through the ring view did not raise an access violation (%s)", fault_name(f));
	for (i = 0; i < sizeof(prots) / sizeof(prots[0]); i++) {
		if (VirtualProtect((void *)hdr, 4096, prots[i], &old)) {
			r_fail(r, "VirtualProtect(%#lx) succeeded on the ring view", (unsigned long)prots[i]);
			VirtualProtect((void *)hdr, 4096, old, &old);
		}
	}
	e = WriteProcessMemory(GetCurrentProcess(), (void *)hdr, &v, 1, &n) ? 0 : GetLastError();
	r_dstr(r, "write_process_memory", errname(e));
	if (!e || n)
		r_fail(r, "WriteProcessMemory wrote %llu bytes into the ring view", (unsigned long long)n);
	if (!ring_hdr_intact(hdr, 64))
		r_fail(r, "the ring header changed: magic %#x version %u records %u",
		       hdr->magic, hdr->version, hdr->records);
	CloseHandle(h);	/* CLEANUP unmaps the view and frees the ring */
}

static void sec_ring_bad_setup(struct result *r, struct sec_ctx *c)
{
	static const unsigned int bad_sizes[] = { 0, 32, 100, 131072 };
	struct hilbox_win_ev_ring setup;
	struct hilbox_ev_ring_wait rel;
	const struct hilbox_ev_ring_hdr *hdr = NULL;
	HANDLE h, h2;
	DWORD e;
	size_t i;

	h = ring_case_open(r, c);
	if (h == INVALID_HANDLE_VALUE)
		return;
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		e = ring_setup(h, bad_sizes[i], NULL, NULL);
		if (e != ERROR_INVALID_PARAMETER)
			r_fail(r, "records %u: %s, expected ERROR_INVALID_PARAMETER", bad_sizes[i], errname(e));
	}
	memset(&setup, 0, sizeof(setup));
	setup.records = 64;
	setup.flags = 1;
	e = dev_ioctl(h, IOCTL_HILBOX_EV_RING, &setup, sizeof(setup), &setup, sizeof(setup), NULL);
	if (e != ERROR_INVALID_PARAMETER)
		r_fail(r, "flags 1: %s, expected ERROR_INVALID_PARAMETER", errname(e));
	/* a handle that is not an event (the device's own) */
	e = ring_setup(h, 64, h, NULL);
	r_dstr(r, "not_an_event", errname(e));
	if (e != ERROR_INVALID_PARAMETER)
		r_fail(r, "the device handle as the event: %s, expected ERROR_INVALID_PARAMETER", errname(e));
	memset(&rel, 0, sizeof(rel));
	e = dev_ioctl(h, IOCTL_HILBOX_EV_RING_WAIT, &rel, sizeof(rel), &rel, sizeof(rel), NULL);
	if (e != ERROR_INVALID_PARAMETER)
		r_fail(r, "a release before set-up: %s, expected ERROR_INVALID_PARAMETER", errname(e));

	e = ring_setup(h, 64, NULL, &hdr);
	if (e) {
		r_fail(r, "a good set-up failed: %s", errname(e));
		CloseHandle(h);
		return;
	}
	h2 = dev_open(true, &e);
	if (h2 != INVALID_HANDLE_VALUE) {
		e = ring_setup(h2, 64, NULL, NULL);
		r_dstr(r, "second_ring", errname(e));
		if (e != ERROR_BUSY)
			r_fail(r, "a second ring on the device: %s, expected ERROR_BUSY", errname(e));
		CloseHandle(h2);
	}
	memset(&rel, 0, sizeof(rel));
	rel.head = hdr->tail + 1;	/* past the tail */
	e = dev_ioctl(h, IOCTL_HILBOX_EV_RING_WAIT, &rel, sizeof(rel), &rel, sizeof(rel), NULL);
	if (e != ERROR_INVALID_PARAMETER)
		r_fail(r, "a release past the tail: %s, expected ERROR_INVALID_PARAMETER", errname(e));
	memset(&rel, 0, sizeof(rel));
	rel.head = hdr->head;
	rel.timeout_ms = 10;	/* Windows waits on the event, not in the driver */
	e = dev_ioctl(h, IOCTL_HILBOX_EV_RING_WAIT, &rel, sizeof(rel), &rel, sizeof(rel), NULL);
	if (e != ERROR_INVALID_PARAMETER)
		r_fail(r, "a release with a timeout: %s, expected ERROR_INVALID_PARAMETER", errname(e));
	if (!ring_hdr_intact(hdr, 64))
		r_fail(r, "the ring header changed");
	CloseHandle(h);
}

const struct os_attacks os_attacks = {
	.unprivileged_open = sec_unprivileged_open,
	.write_through_mapping = sec_write_mapping,
	.close_while_mapped = sec_close_while_mapped,
	.reads_pending_then_killed = sec_reads_killed,
	.bad_ioctls = sec_bad_ioctls,
	.short_read = sec_short_read,
	.duplicate_handle = sec_duplicate_handle,
	.inherit_handle = sec_inherit_handle,
	.process_exit_mapped = sec_process_exit,
	.virtualprotect_write = sec_virtualprotect,
	.write_process_memory = sec_write_process_memory,
	.cancel_storm = sec_cancel_storm,
	.ring_write = sec_ring_write,
	.ring_bad_setup = sec_ring_bad_setup,
};
