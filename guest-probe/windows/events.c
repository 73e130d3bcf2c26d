// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * events.c - the Windows probe's events-throughput modes:
 *   iocp (alias uring, the host's name for "inverted call"): N overlapped ReadFile requests
 *        pended on an I/O completion port and re-issued as they complete;
 *   poll: ask the driver how many records wait (STATS ring_level), read them, else sleep 1 ms.
 */
#include "probe_windows.h"

#include <stdlib.h>
#include <string.h>

static bool is_iocp(const char *mode)
{
	return !strcmp(mode, "iocp") || !strcmp(mode, "uring");
}

const char *os_ev_mode(const char *mode, bool *async)
{
	if (!is_iocp(mode) && strcmp(mode, "poll")) {
		dbg("unknown mode %s (iocp|uring|poll)", mode);
		return NULL;
	}
	*async = true;
	return is_iocp(mode) ? "iocp" : "poll";
}

static enum ev_outcome ev_iocp(struct ev_run *run)
{
	HANDLE h = (HANDLE)run->h;
	struct ev_acc *a = run->a;
	struct pend *p = calloc(run->pending, sizeof(*p));
	OVERLAPPED_ENTRY ent[64];
	HANDLE port = p ? CreateIoCompletionPort(h, NULL, 1, 1) : NULL;
	unsigned int i, inflight = 0;
	uint64_t clk;
	ULONG n, k;

	if (!port) {
		r_fail(run->r, "CreateIoCompletionPort: %s", errname(GetLastError()));
		free(p);
		return EV_ABORT;
	}
	inflight = pend_reads(h, p, run->pending, false);
	while (now_ns() < run->deadline && inflight) {
		if (!GetQueuedCompletionStatusEx(port, ent, 64, &n, 100, FALSE))
			continue;	/* timeout */
		clk = 0;
		dev_clock(h, &clk);	/* time of receipt */
		for (k = 0; k < n; k++) {
			struct pend *q = (struct pend *)ent[k].lpOverlapped;
			LONG status = (LONG)q->ov.Internal;

			if (status >= 0 && ent[k].dwNumberOfBytesTransferred == EV_SZ) {
				acc_add(a, &q->ev, clk);
				acc_completion(a, &q->ev);
			} else
				a->errors++;
			if (status < 0 && a->errors < 4)
				dbg("overlapped read: NTSTATUS %#lx", (unsigned long)status);
			if (status < 0 && a->errors > 100) {
				q->busy = false;
				inflight--;
				continue;	/* give up on this slot */
			}
			memset(&q->ov, 0, sizeof(q->ov));
			if (!ReadFile(h, &q->ev, EV_SZ, NULL, &q->ov) && GetLastError() != ERROR_IO_PENDING) {
				q->busy = false;
				inflight--;
				a->errors++;
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
		r_fail(run->r, "%u reads still pending 5 s after CancelIoEx", inflight);
	CloseHandle(port);
	if (!inflight)
		free(p);	/* with requests outstanding the buffers must stay valid */
	return EV_REPORT;
}

static enum ev_outcome ev_poll(struct ev_run *run)
{
	HANDLE h = (HANDLE)run->h;
	struct ev_acc *a = run->a;
	struct hilbox_event ev[16];
	struct hilbox_stats st;
	DWORD got, want, i, e;
	uint64_t clk;

	while (now_ns() < run->deadline) {
		if (dev_stats(h, &st) || !st.ring_level) {
			Sleep(1);
			continue;
		}
		want = st.ring_level < 16 ? st.ring_level : 16;
		if (want > run->pending)
			want = run->pending;
		e = read_timed(h, ev, want * EV_SZ, 100, &got);
		if (e) {
			if (e != WAIT_TIMEOUT)
				a->errors++;
			continue;
		}
		clk = 0;
		dev_clock(h, &clk);
		for (i = 0; i < got / EV_SZ; i++)
			acc_add(a, &ev[i], clk);
		if (got >= EV_SZ)
			acc_completion(a, &ev[got / EV_SZ - 1]);
	}
	return EV_REPORT;
}

enum ev_outcome os_ev_run(struct ev_run *run, const char *mode)
{
	run->ordered = true;
	return is_iocp(mode) ? ev_iocp(run) : ev_poll(run);
}
