// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * unplug.c - the Windows side of the two-step device-removal check: the
 * detached holder (the probe again, `_unplug-holder`) that maps BAR2, pends
 * overlapped reads and waits until the device is gone, and the verdict on what
 * it saw.
 */
#include "probe_windows.h"

#include <stdio.h>
#include <string.h>

/* the background part: maps, pends reads, waits until the device is gone, reports */
int cmd_unplug_holder(int max_wait_s)
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
		state_write("status", "error open\n");
		return 1;
	}
	dev_set_events(h, 0, HILBOX_EVCTL_FLUSH);	/* unsubscribed: the reads stay pending */
	p = map_fb(h, &e);
	if (!p) {
		state_write("status", "error map\n");
		return 1;
	}
	touch(p, false, &before);
	pend_reads(h, rd, NR, true);
	for (i = 0; i < NR; i++) {
		evs[i] = rd[i].ov.hEvent;
		status[i] = ERROR_IO_PENDING;
	}
	snprintf(txt, sizeof(txt), "ready %lu\n", (unsigned long)GetCurrentProcessId());
	state_write("status", txt);

	/* wait for the removal: a pending read completes, or the device stops answering */
	deadline = now_ns() + (uint64_t)max_wait_s * 1000000000ull;
	for (;;) {
		DWORD w = WaitForMultipleObjects(NR, evs, FALSE, 500);

		if (w < WAIT_OBJECT_0 + NR || dev_info(h, &in2)) {
			t_gone = now_ns();
			break;
		}
		if (now_ns() > deadline) {
			state_write("result", "{\"timeout\":true}\n");
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
	state_write("result", txt);
	unmap_fb(h, p);
	CloseHandle(h);	/* last reference: the driver frees its state now */
	state_write("status", "closed\n");
	return 0;
}

bool os_holder_start(struct result *r, struct sec_ctx *c, const char *note[2])
{
	STARTUPINFOA si;
	PROCESS_INFORMATION pi;
	char cmd[2048];
	DWORD flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP;
	bool broke_away = true;

	snprintf(cmd, sizeof(cmd), "\"%s\" --dev %s _unplug-holder --state-dir \"%s\" --max-wait-s %d", g_self, g_dev,
		 g_state_dir, c->max_wait_s);
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	/* outlive the SSH session: leave sshd's job object when allowed */
	if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, flags | CREATE_BREAKAWAY_FROM_JOB, NULL, NULL, &si, &pi)) {
		broke_away = false;
		if (!CreateProcessA(NULL, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, &pi)) {
			r_fail(r, "CreateProcess: %s", errname(GetLastError()));
			return false;
		}
	}
	CloseHandle(pi.hThread);
	CloseHandle(pi.hProcess);
	note[0] = "job_breakaway";
	note[1] = broke_away ? "yes" : "no";
	return true;
}

void os_unplug_judge(struct result *rm, struct result *rr, const char *res, const char *status)
{
	if (!strstr(res, "\"map_fault\":\"ACCESS_VIOLATION\"") || !strstr(res, "\"map_fault_last\":\"ACCESS_VIOLATION\""))
		r_fail(rm, "access to the mapping after removal did not raise an access violation");
	if (strstr(res, "\"info_error\":\"OK\""))
		r_fail(rm, "an IOCTL after removal succeeded");
	if (strstr(res, "\"map_error\":\"OK\""))
		r_fail(rm, "MAP_FB after removal succeeded");
	if (strstr(res, "\"read_error\":\"OK\"") || strstr(res, "\"read_error\":\"WAIT_TIMEOUT\""))
		r_fail(rr, "a read after removal did not fail at once");
	if (strstr(res, "\"pending\""))
		r_fail(rr, "a read was still pending after removal");
	if (strstr(res, "\"error\":\"OK\""))
		r_fail(rr, "a pending read completed successfully after removal");
	if (strncmp(status, "closed", 6))
		r_fail(rr, "the holder did not close the device");
}

void os_unplug_finish(struct result *rm)
{
	(void)rm;
}
