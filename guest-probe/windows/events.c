// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * events.c - the Windows probe's events-throughput modes:
 *   iocp (alias uring, the host's name for "inverted call"): N overlapped ReadFile requests
 *        pended on an I/O completion port and re-issued as they complete;
 *   poll: ask the driver how many records wait (STATS ring_level), read them, else sleep 1 ms;
 *   ring: the shared-memory ring (IOCTL_HILBOX_EV_RING): a read-only view, an auto-reset event
 *        the driver sets after each batch, IOCTL_HILBOX_EV_RING_WAIT to release what was read.
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
	if (!is_iocp(mode) && strcmp(mode, "poll") && strcmp(mode, "ring")) {
		dbg("unknown mode %s (iocp|uring|poll|ring)", mode);
		return NULL;
	}
	*async = true;
	return is_iocp(mode) ? "iocp" : mode;
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

#define RING_RECORDS	4096u

/* Position p of the ring into *e; false if the slot does not hold p (it was reused). */
static bool ring_copy(const struct hilbox_ev_ring_hdr *hdr, uint64_t p, struct hilbox_event *e)
{
	const struct hilbox_ev_slot *slots =
		(const struct hilbox_ev_slot *)((const uint8_t *)hdr + hdr->slots_offset);
	const struct hilbox_ev_slot *s = &slots[p & (hdr->records - 1)];

	if (__atomic_load_n(&s->pos, __ATOMIC_ACQUIRE) != p)
		return false;
	*e = s->ev;
	return true;
}

static enum ev_outcome ev_ring(struct ev_run *run)
{
	HANDLE h = (HANDLE)run->h;
	struct ev_acc *a = run->a;
	struct hilbox_win_ev_ring setup;
	struct hilbox_ev_ring_wait rel;
	const struct hilbox_ev_ring_hdr *hdr;
	struct hilbox_event e;
	uint64_t head = 0, t, p, clk;
	HANDLE ev;
	DWORD err;

	if (!(run->in->drv_flags & HILBOX_DRV_EV_RING)) {
		r_skip(run->r, "the driver offers no shared-memory ring (HILBOX_DRV_EV_RING)");
		return EV_ABORT;
	}
	ev = CreateEventA(NULL, FALSE, FALSE, NULL);	/* auto-reset */
	if (!ev) {
		r_fail(run->r, "CreateEvent: %s", errname(GetLastError()));
		return EV_ABORT;
	}
	memset(&setup, 0, sizeof(setup));
	setup.records = RING_RECORDS;
	setup.event = (uint64_t)(uintptr_t)ev;
	err = dev_ioctl(h, IOCTL_HILBOX_EV_RING, &setup, sizeof(setup), &setup, sizeof(setup), NULL);
	if (err) {
		r_fail(run->r, "IOCTL_HILBOX_EV_RING: %s", errname(err));
		CloseHandle(ev);
		return EV_ABORT;
	}
	hdr = (const struct hilbox_ev_ring_hdr *)(uintptr_t)setup.user_va;
	r_dnum(run->r, "ring_records", RING_RECORDS);
	while (now_ns() < run->deadline) {
		t = __atomic_load_n(&hdr->tail, __ATOMIC_ACQUIRE);
		if (t == head) {
			WaitForSingleObject(ev, 100);	/* set after each batch */
			continue;
		}
		clk = 0;
		dev_clock(h, &clk);	/* time of receipt */
		for (p = head; p != t; p++) {
			if (ring_copy(hdr, p, &e))
				acc_add(a, &e, clk);
			else
				a->errors++;
		}
		acc_completion(a, &e);
		head = t;
		memset(&rel, 0, sizeof(rel));
		rel.head = head;	/* release: the driver may reuse [.., head) */
		if (dev_ioctl(h, IOCTL_HILBOX_EV_RING_WAIT, &rel, sizeof(rel), &rel, sizeof(rel), NULL) &&
		    ++a->errors > 100)
			break;
	}
	r_metric(run->r, "ring_dropped", (double)hdr->dropped, "events");
	r_metric(run->r, "ring_wakeups", (double)hdr->wakeups, "wakeups");
	/* the view goes with the handle (CLEANUP); the event after it */
	CloseHandle(ev);
	return EV_REPORT;
}

enum ev_outcome os_ev_run(struct ev_run *run, const char *mode)
{
	run->ordered = true;
	if (!strcmp(mode, "ring"))
		return ev_ring(run);
	return is_iocp(mode) ? ev_iocp(run) : ev_poll(run);
}
