// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * probe_consume.c - fb-consume: what consuming every frame at the device's
 * own rate costs the guest CPU (guest-driver/INTERFACE.md §6, "fb-consume").
 *
 * fb-throughput reads frames back to back and reports bandwidth.  A display
 * consumer does something else: it waits for each new frame the way a
 * consumer without frame interrupts has to (it sleeps until the next frame is
 * due by the device clock, then polls FRAME_STATE with short sleeps), reads it
 * once by its method, and sleeps again.  What it costs is
 * the share of one CPU the process used, and what it gets is the frames it
 * consumed, the ones it missed, and the torn ones it was handed.
 *
 * OS-neutral: only the primitives of probe_os.h, so both probes have it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe_core.h"
#include "probe_os.h"

#define FC_POLL_MS	1	/* the sleep between two FRAME_STATE polls */
#define FC_COPY_RETRIES	1	/* COPY_FRAME's max_retries (0 would mean the module default) */

struct fc_run {
	os_handle h;
	const struct hilbox_info *in;
	enum fb_method m;
	const uint8_t *fb;	/* the mapping; NULL for copy */
	uint8_t *dst;
};

struct fc_stats {
	uint64_t published;	/* FRAME_NUMBER at the end minus at the start */
	uint64_t consumed;	/* frames handed to the consumer */
	uint64_t missed;	/* published - consumed */
	uint64_t torn;		/* consumed frames whose pixels hold more than one frame */
	uint64_t discarded;	/* reads the seqlock threw away */
	uint64_t polls;		/* FRAME_STATE calls while waiting */
	uint64_t sleeps;	/* sleeps until the next frame was due */
	uint64_t read_ns;	/* inside the reads */
	uint64_t check_cpu_ns;	/* CPU of the tear check, left out of cpu_ns */
	uint64_t wall_ns, cpu_ns;
	bool cut;		/* a read still running at the end was cut off */
	os_err err;
};

/* Polls FRAME_STATE with short sleeps until a frame other than `last` is current
   (with the seqlock: and FRAME_SEQ is even). */
static os_err fc_wait(const struct fc_run *f, bool seqlock, uint64_t last, uint64_t deadline,
		      struct hilbox_frame_state *fs, struct fc_stats *s)
{
	for (;;) {
		os_err e = os_frame_state(f->h, fs);

		s->polls++;
		if (e)
			return e;
		if (fs->frame_number != last && !(seqlock && (fs->frame_seq & 1)))
			return 0;
		if (now_ns() >= deadline)
			return OS_ETIMEOUT;
		os_sleep_ms(FC_POLL_MS);
	}
}

/*
 * A consumer that knows the frame rate does not poll a whole period: after a
 * frame it sleeps until FRAME_POLL_MS before the next one is due (the frame's
 * FRAME_TIMESTAMP plus one period, on the device clock), then polls.
 */
static void fc_sleep_until_due(const struct fc_run *f, const struct hilbox_frame_state *fs,
			       uint64_t deadline, struct fc_stats *s)
{
	uint64_t clk, due, left, now = now_ns();

	if (!f->in->fps || now >= deadline || os_clock(f->h, &clk))
		return;
	due = fs->frame_timestamp + 1000000000ull / f->in->fps;
	if (due <= clk + 2000000ull * FC_POLL_MS)
		return;
	left = (due - clk) / 1000000ull - FC_POLL_MS;	/* ms */
	if (left > (deadline - now) / 1000000ull)
		left = (deadline - now) / 1000000ull;
	if (left) {
		s->sleeps++;
		os_sleep_ms((unsigned int)left);
	}
}

/* One frame by the method.  0: consumed, *n its number; OS_EAGAIN: the seqlock
   threw it away; OS_ETIMEOUT/OS_EINTR: cut off at the deadline. */
static os_err fc_read(const struct fc_run *f, bool seqlock, const struct hilbox_frame_state *fs,
		      uint64_t deadline, uint64_t *n)
{
	struct hilbox_frame_state s2;
	struct hilbox_copy_frame cf;
	os_err e;

	if (f->m == M_COPY) {
		e = os_copy(f->h, f->dst, f->in->fb_bytes, seqlock ? 0 : HILBOX_COPY_NO_SEQLOCK,
			    FC_COPY_RETRIES, &cf);
		*n = e ? fs->frame_number : cf.frame_number;
		return e;
	}
	if (raw_copy(f->dst, f->fb, f->in->fb_bytes, f->m, deadline))
		return OS_ETIMEOUT;
	*n = fs->frame_number;
	if (!seqlock)
		return 0;
	e = os_frame_state(f->h, &s2);
	if (e)
		return e;
	return s2.frame_seq == fs->frame_seq ? 0 : OS_EAGAIN;
}

static void fc_phase(const struct fc_run *f, bool seqlock, double seconds, struct fc_stats *s)
{
	struct hilbox_frame_state fs;
	uint64_t t0, c0, deadline, last, start, n = 0, r0, k0;
	os_err e;

	memset(s, 0, sizeof(*s));
	e = os_frame_state(f->h, &fs);
	if (e) {
		s->err = e;
		return;
	}
	start = last = fs.frame_number;	/* the frame already there is not waited for */
	t0 = now_ns();
	c0 = os_cpu_ns();
	deadline = t0 + (uint64_t)(seconds * 1e9);
	/* a COPY_FRAME still running at the deadline is interrupted (Linux) */
	os_alarm(seconds);
	fc_sleep_until_due(f, &fs, deadline, s);
	while (!os_alarm_fired() && now_ns() < deadline) {
		e = fc_wait(f, seqlock, last, deadline, &fs, s);
		if (e == OS_ETIMEOUT)
			break;
		if (e) {
			s->err = e;
			break;
		}
		r0 = now_ns();
		e = fc_read(f, seqlock, &fs, deadline, &n);
		if (e == OS_ETIMEOUT || e == OS_EINTR) {
			s->cut = true;
			break;
		}
		s->read_ns += now_ns() - r0;
		if (e && e != OS_EAGAIN) {
			s->err = e;
			break;
		}
		last = n;
		if (e == OS_EAGAIN) {		/* torn: wait for the next frame */
			s->discarded++;
			fc_sleep_until_due(f, &fs, deadline, s);
			continue;
		}
		s->consumed++;
		/* the tear check is the measurement's, not the consumer's: its CPU is left out */
		k0 = os_cpu_ns();
		if (!frame_consistent(f->dst, f->in, NULL))
			s->torn++;
		s->check_cpu_ns += os_cpu_ns() - k0;
		fc_sleep_until_due(f, &fs, deadline, s);
	}
	os_alarm(0);
	s->wall_ns = now_ns() - t0;
	s->cpu_ns = os_cpu_ns() - c0;
	s->cpu_ns = s->cpu_ns > s->check_cpu_ns ? s->cpu_ns - s->check_cpu_ns : 0;
	if (!os_frame_state(f->h, &fs) && fs.frame_number > start)
		s->published = fs.frame_number - start;
	s->missed = s->published > s->consumed ? s->published - s->consumed : 0;
}

static void fc_report(struct result *r, const struct fc_stats *s, const char *sfx, bool seqlock)
{
	const char *phase = seqlock ? "with the seqlock" : "without the seqlock";
	double wall = (double)s->wall_ns / 1e9;
	char k[64];

#define CM(name, val, unit) do { \
		snprintf(k, sizeof(k), "%s%s", name, sfx); \
		r_metric(r, k, val, unit); \
	} while (0)
	CM("cpu_percent", wall > 0 ? (double)s->cpu_ns / (double)s->wall_ns * 100.0 : 0, "%");
	CM("cpu_time", (double)s->cpu_ns / 1e9, "s");
	CM("wall_time", wall, "s");
	CM("frames_published", (double)s->published, "frames");
	CM("frames_consumed", (double)s->consumed, "frames");
	CM("frames_missed", (double)s->missed, "frames");
	CM("torn_frames", (double)s->torn, "frames");
	CM("frames_discarded", (double)s->discarded, "frames");
	CM("frame_polls", (double)s->polls, "polls");
	CM("frame_sleeps", (double)s->sleeps, "sleeps");
	CM("consume_time", (double)s->read_ns / 1e9, "s");
	CM("check_cpu_time", (double)s->check_cpu_ns / 1e9, "s");
#undef CM
	if (s->err)
		r_fail(r, "consuming frames %s failed: %s", phase, os_strerror(s->err));
	if (seqlock && s->torn)
		r_fail(r, "%llu torn frames despite the seqlock", (unsigned long long)s->torn);
	if (s->cut)
		r_dstr(r, *sfx ? "cut_no_seqlock" : "cut", "a read still running at the end of the phase was cut off and not counted");
	if (!s->consumed && !s->err)
		r_dstr(r, *sfx ? "note_no_seqlock" : "note", s->discarded ?
		       "no frame consumed: one read takes longer than a frame period, so the seqlock threw every read away" :
		       "no frame consumed: one read takes longer than the phase");
}

int core_fb_consume(const struct probe_opts *o)
{
	const char *method = o->method ? o->method : "map";
	bool both = !strcmp(o->seqlock, "both"), lock = strcmp(o->seqlock, "off") != 0;
	struct fb_buf dst = { 0 };
	const uint8_t *mapped = NULL;
	struct hilbox_info in;
	struct fc_stats s;
	struct fc_run f;
	struct result r;
	enum fb_method m;
	char name[64];
	os_err e;
	os_handle h;

	for (m = M_COPY; m < M_RAM; m++)
		if (!strcmp(method, method_name[m]))
			break;
	if (m >= M_RAM) {
		dbg("fb-consume: unknown method %s (allowed: copy, map, bytewise, qword)", method);
		return 2;
	}
	if (!both && strcmp(o->seqlock, "on") && strcmp(o->seqlock, "off")) {
		dbg("fb-consume: --seqlock %s (allowed: on, off, both)", o->seqlock);
		return 2;
	}
	snprintf(name, sizeof(name), "fb-consume-%s", method);
	r_init(&r, "throughput", name, NULL);
	h = open_checked(&r, 0, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	info_into(&r, &in);
	r_dstr(&r, "method", method);
	r_dstr(&r, "seqlock", both ? "both" : lock ? "on" : "off");
	r_dnum(&r, "width", in.width);
	r_dnum(&r, "height", in.height);
	r_dnum(&r, "fps", in.fps);
	r_dnum(&r, "mmio_latency_ns", in.mmio_latency_ns);
	r_dnum(&r, "poll_ms", FC_POLL_MS);
	memset(&f, 0, sizeof(f));
	f.h = h;
	f.in = &in;
	f.m = m;
	if (m != M_COPY) {
		f.fb = mapped = os_map(h, &in, &e);
		if (!mapped) {
			r_fail(&r, "%s: %s", os_desc.map_op, os_strerror(e));
			goto out_close;
		}
		/* fault the mapping in before the measurement */
		for (size_t i = 0; i < in.fb_bytes; i += FB_PAGE)
			(void)((const volatile uint8_t *)mapped)[i];
	}
	if (!fb_buf_alloc(&dst, in.fb_bytes, f.fb)) {
		r_fail(&r, "out of memory");
		goto out_unmap;
	}
	f.dst = dst.p;
	fc_phase(&f, lock, o->seconds, &s);
	fc_report(&r, &s, "", lock);
	if (both) {
		fc_phase(&f, false, o->seconds, &s);
		fc_report(&r, &s, "_no_seqlock", false);
	}
out_unmap:
	if (mapped)
		os_unmap(h, mapped, &in);
out_close:
	os_close(h);
out:
	free(dst.raw);
	r_emit(&r);
	return 0;
}
