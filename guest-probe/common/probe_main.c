// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * hilbox-probe - guest-side test and measurement tool for the hilbox drivers.
 *
 * The core: main, the usage text, the command dispatch and the commands that
 * only need the device primitives of probe_os.h (info, verify-frames,
 * dump-frame, fb-throughput, read-events, events-throughput).  The security
 * cases are in probe_cases.c, the OS primitives in guest-probe/<os>/.
 *
 * Prints one JSON object per line on stdout (docs/results-schema.md),
 * diagnostics on stderr.  Exit status: 0 all results pass/skip, 1 a result
 * failed, 2 usage error.  See guest-driver/INTERFACE.md.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "probe_core.h"
#include "probe_os.h"

#define EV_SZ	sizeof(struct hilbox_event)

os_handle open_checked(struct result *r, unsigned int flags, struct hilbox_info *in)
{
	os_err e;
	os_handle h = os_open(flags, &e);

	if (h == OS_NO_HANDLE) {
		if (os_err_no_device(e))
			r_skip(r, "%s does not exist (%s)", g_dev, os_desc.no_device_hint);
		else
			r_fail(r, "open %s: %s", g_dev, os_strerror(e));
		return OS_NO_HANDLE;
	}
	e = os_info(h, in);
	if (e) {
		r_fail(r, "%s: %s", os_desc.info_op, os_strerror(e));
		os_close(h);
		return OS_NO_HANDLE;
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* framebuffer copies                                                  */

/*
 * One frame from the mapping, user-space seqlock through FRAME_STATE.
 * After a failed attempt wait for the next frame to get a whole period.
 */
static os_err map_copy_frame(os_handle h, const uint8_t *fb, uint8_t *dst, size_t len,
			     enum fb_method m, bool seqlock, unsigned int max_retries,
			     uint64_t deadline, struct copy_out *o)
{
	struct hilbox_frame_state s1, s2;
	uint32_t after = 0;
	os_err e;

	memset(o, 0, sizeof(*o));
	for (;;) {
		e = os_frame_state(h, &s1);
		if (e)
			return e;
		if (seqlock && ((s1.frame_seq & 1) ||
				(o->retries && s1.frame_seq == after))) {
			if (deadline && now_ns() > deadline)
				return OS_ETIMEOUT;
			os_yield();
			continue;
		}
		if (raw_copy(dst, fb, len, m, deadline))
			return OS_ETIMEOUT;
		e = os_frame_state(h, &s2);
		if (e)
			return e;
		o->frame_number = s1.frame_number;
		o->seq1 = s1.frame_seq;
		o->seq2 = s2.frame_seq;
		if (!seqlock || s1.frame_seq == s2.frame_seq)
			return 0;
		if (o->retries++ >= max_retries)
			return OS_EAGAIN;
		after = s2.frame_seq;
	}
}

static os_err copy_frame_any(os_handle h, const uint8_t *fb, uint8_t *dst,
			     const struct hilbox_info *in, enum fb_method m,
			     bool seqlock, uint64_t deadline, struct copy_out *o)
{
	struct hilbox_copy_frame cf;
	os_err e;

	if (m != M_COPY)
		return map_copy_frame(h, fb, dst, in->fb_bytes, m, seqlock, 64, deadline, o);
	e = os_copy(h, dst, in->fb_bytes, seqlock ? 0 : HILBOX_COPY_NO_SEQLOCK, 0, &cf);
	if (e)
		return e;
	o->frame_number = cf.frame_number;
	o->seq1 = cf.frame_seq;
	o->seq2 = cf.frame_seq_end;
	o->retries = cf.retries;
	return 0;
}

/* ------------------------------------------------------------------ */
/* info                                                                */

static int cmd_info(struct probe_opts *o)
{
	struct hilbox_info in;
	struct hilbox_stats st;
	struct result r;
	uint64_t clk = 0;
	os_handle h;

	(void)o;
	r_init(&r, "info", "device-info", NULL);
	h = open_checked(&r, 0, &in);
	if (h != OS_NO_HANDLE) {
		bool have_st = !os_stats(h, &st), have_clk = !os_clock(h, &clk);

		info_report(&r, &in, have_st ? &st : NULL, have_clk ? &clk : NULL);
		os_close(h);
	}
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* verify-frames                                                       */

static os_err wait_new_frame(os_handle h, uint64_t last, uint64_t deadline, uint64_t *cur)
{
	struct hilbox_frame_state fs;
	os_err e;

	for (;;) {
		e = os_frame_state(h, &fs);
		if (e)
			return e;
		if (!(fs.frame_seq & 1) && (fs.frame_number != last || last == UINT64_MAX)) {
			*cur = fs.frame_number;
			return 0;
		}
		if (now_ns() > deadline)
			return OS_ETIMEOUT;
		os_sleep_ms(1);
	}
}

static void verify_method(struct result *r, os_handle h, const uint8_t *fb,
			  const struct hilbox_info *in, enum fb_method m,
			  unsigned int frames, uint64_t deadline)
{
	uint8_t *buf = malloc(in->fb_bytes);
	struct verify_tot t = { .t0 = now_ns() };
	uint64_t last = UINT64_MAX, cur;
	struct verify_res v;
	struct copy_out o;
	unsigned int i;
	os_err e;

	if (!buf) {
		r_fail(r, "out of memory");
		return;
	}
	for (i = 0; i < frames; i++) {
		e = wait_new_frame(h, last, deadline, &cur);
		if (!e)
			e = copy_frame_any(h, fb, buf, in, m, true, deadline, &o);
		if (e) {
			r_fail(r, "%s: frame %u of %u: %s", method_name[m], i, frames,
			       e == OS_ETIMEOUT ? "timed out" : os_strerror(e));
			break;
		}
		t.retries += o.retries;
		if (o.frame_number == last) {	/* raced: same frame again */
			i--;
			continue;
		}
		last = o.frame_number;
		if (verify_tally(&t, buf, in, o.frame_number, &v))
			dbg("%s: frame %llu: %llu bad pixels (%llu of another frame), %llu bad padding bytes",
			    method_name[m], (unsigned long long)o.frame_number,
			    (unsigned long long)v.bad_px, (unsigned long long)v.other_px,
			    (unsigned long long)v.bad_pad);
	}
	verify_report(r, method_name[m], &t);
	free(buf);
}

static int cmd_verify_frames(struct probe_opts *o)
{
	uint64_t deadline = now_ns() + (uint64_t)o->timeout_s * 1000000000ull;
	const char *method = o->method ? o->method : "both";
	unsigned int frames = o->frames ? o->frames : 1;
	const uint8_t *fb;
	struct hilbox_info in;
	struct result r;
	os_err e;
	os_handle h;

	r_init(&r, "verify", "verify-frames", NULL);
	h = open_checked(&r, 0, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	info_into(&r, &in);
	r_dnum(&r, "frames_requested", frames);
	fb = os_map(h, &in, &e);
	if (!fb) {
		r_fail(&r, "%s (%llu bytes): %s", os_desc.map_bar2_op,
		       (unsigned long long)in.bar2_size, os_strerror(e));
		goto out_close;
	}
	/* bytes of BAR2 past FB_BYTES read as 0 (SPEC 4.2) */
	bar2_tail_check(&r, fb, &in);
	if (strcmp(method, "map"))
		verify_method(&r, h, fb, &in, M_COPY, frames, deadline);
	if (strcmp(method, "copy"))
		verify_method(&r, h, fb, &in, M_MAP, frames, deadline);
	os_unmap(h, fb, &in);
out_close:
	os_close(h);
out:
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* dump-frame                                                          */

static int cmd_dump_frame(struct probe_opts *o)
{
	const char *out = o->out;
	struct hilbox_copy_frame cf;
	struct hilbox_info in;
	struct result r;
	char *metapath = NULL;
	uint8_t *buf = NULL;
	FILE *f;
	os_err e;
	os_handle h;

	if (!out)
		return -1;
	r_init(&r, "verify", "dump-frame", NULL);
	h = open_checked(&r, 0, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	buf = malloc(in.fb_bytes);
	if (!buf) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	e = os_copy(h, buf, in.fb_bytes, 0, 256, &cf);
	if (e) {
		r_fail(&r, "%s: %s", os_desc.copy_op, os_strerror(e));
		goto out_close;
	}
	dump_verify(&r, buf, &in, &cf);
	f = fopen(out, "wb");
	if (!f) {
		if (os_desc.create_errno)
			r_fail(&r, "cannot create %s: %s", out, strerror(errno));
		else
			r_fail(&r, "cannot create %s", out);
		goto out_close;
	}
	if (!dump_rows(f, buf, &in)) {
		r_fail(&r, "write %s failed", out);
		goto out_close;
	}
	metapath = malloc(strlen(out) + sizeof(".json"));
	if (!metapath) {
		r_fail(&r, "out of memory");
		goto out_close;
	}
	sprintf(metapath, "%s.json", out);
	if (!dump_meta(metapath, &in, &cf)) {
		r_fail(&r, "write %s failed", metapath);
		goto out_close;
	}
	dump_report(&r, out, metapath, &in, &cf);
out_close:
	os_close(h);
out:
	free(metapath);
	free(buf);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fb-throughput                                                       */

/*
 * What and how (guest-driver/INTERFACE.md §6): one read = one whole frame
 * into dst, and reads are the only thing timed; FRAME_STATE, the seqlock's
 * waits, the tear check and the RAM reference's reads happen outside.
 */
#define FB_MAP_RETRIES	64	/* mapping methods: torn reads before a give-up */
#define FB_COPY_RETRIES	16	/* COPY_FRAME's max_retries */
#define FB_GRACE_S	5	/* a read may run this long past its phase */

struct fb_run {
	os_handle h;
	const struct hilbox_info *in;
	enum fb_method m;
	const uint8_t *src;	/* mapping, peer BAR or RAM frame; NULL for copy */
	uint8_t *dst;
	const uint8_t *ref;	/* a frame in RAM: the reference */
	bool state;		/* src shows the device's frames: FRAME_STATE applies */
};

/* The timed region: one whole frame into f->dst; *reads: attempts made. */
static os_err fb_read(const struct fb_run *f, bool seqlock, uint64_t cut_at,
		      struct copy_out *o, uint64_t *ns, uint32_t *reads)
{
	struct hilbox_copy_frame cf;
	uint64_t t0 = now_ns();
	os_err e = 0;

	*reads = 1;
	if (f->m == M_COPY) {
		e = os_copy(f->h, f->dst, f->in->fb_bytes, seqlock ? 0 : HILBOX_COPY_NO_SEQLOCK,
			    FB_COPY_RETRIES, &cf);
		if (!e) {
			o->frame_number = cf.frame_number;
			o->seq1 = cf.frame_seq;
			o->seq2 = cf.frame_seq_end;
			o->retries = cf.retries;
			*reads = 1 + cf.retries;
		} else if (e == OS_EAGAIN) {
			*reads = 1 + FB_COPY_RETRIES;
		}
	} else if (raw_copy(f->dst, f->src, f->in->fb_bytes, f->m, cut_at)) {
		e = OS_ETIMEOUT;
	}
	*ns = now_ns() - t0;
	return e;
}

/* Untimed: FRAME_STATE until FRAME_SEQ is even (and not `after` when wait_next). */
static os_err fb_wait_even(const struct fb_run *f, bool wait_next, uint32_t after,
			   uint64_t deadline, struct hilbox_frame_state *fs, uint64_t *wait_ns)
{
	uint64_t t0 = now_ns();
	os_err e;

	for (;;) {
		e = os_frame_state(f->h, fs);
		if (e)
			break;
		if (!(fs->frame_seq & 1) && !(wait_next && fs->frame_seq == after))
			break;
		if (now_ns() > deadline) {
			e = OS_ETIMEOUT;
			break;
		}
		os_yield();
	}
	*wait_ns += now_ns() - t0;
	return e;
}

static void fb_phase(const struct fb_run *f, bool seqlock, bool with_ref, double seconds,
		     struct tp_stats *s)
{
	uint64_t t0 = now_ns(), c0 = os_cpu_ns();
	uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
	uint64_t cut_at = deadline + (uint64_t)FB_GRACE_S * 1000000000ull;
	uint64_t fb_bytes = f->in->fb_bytes, last = UINT64_MAX, ns;
	bool check = f->state, wait_next = false;
	struct hilbox_frame_state s1, s2;
	uint32_t after = 0, tries = 0, reads, n16;
	struct copy_out o;
	os_err e;

	memset(s, 0, sizeof(*s));
	s->checked = check;
	/* a COPY_FRAME still running at cut_at is interrupted (Linux) */
	os_alarm(seconds + FB_GRACE_S);
	while (!os_alarm_fired() && now_ns() < deadline) {
		memset(&o, 0, sizeof(o));
		memset(&s1, 0, sizeof(s1));
		if (f->state && seqlock) {
			e = fb_wait_even(f, wait_next && f->m != M_COPY, after, deadline, &s1, &s->wait_ns);
			if (e == OS_ETIMEOUT)
				break;	/* the phase ended while waiting */
		} else if (f->state && f->m != M_COPY) {
			e = os_frame_state(f->h, &s1);
		} else {
			e = 0;
		}
		if (e) {
			s->err = e;
			break;
		}

		e = fb_read(f, seqlock, cut_at, &o, &ns, &reads);
		if (e == OS_ETIMEOUT || e == OS_EINTR) {
			s->cut = true;	/* cut off: not counted */
			break;
		}
		if (e && e != OS_EAGAIN) {
			s->err = e;
			break;
		}
		s->reads += reads;
		s->bytes += reads * fb_bytes;
		s->read_ns += ns;
		if (f->state && f->m != M_COPY) {
			e = os_frame_state(f->h, &s2);
			if (e) {
				s->err = e;
				break;
			}
			o.frame_number = s1.frame_number;
			o.seq1 = s1.frame_seq;
			o.seq2 = s2.frame_seq;
		}
		if (e == OS_EAGAIN) {	/* COPY_FRAME gave up on this frame */
			s->retries += FB_COPY_RETRIES;
			s->giveups++;
		} else if (seqlock && f->m != M_COPY && f->state &&
			   ((o.seq1 & 1) || o.seq1 != o.seq2)) {
			/* torn: the next attempt waits for the next frame */
			s->retries++;
			wait_next = true;
			after = o.seq2;
			if (++tries > FB_MAP_RETRIES) {
				s->giveups++;
				tries = 0;
			}
		} else {
			s->retries += o.retries;
			tries = 0;
			wait_next = false;
			s->frames++;
			if (check) {
				if (o.seq1 != o.seq2 || (o.seq1 & 1))
					s->seq_mismatch++;
				if (!frame_consistent(f->dst, f->in, &n16))
					s->torn++;
				if (o.frame_number != last) {
					if (last != UINT64_MAX && o.frame_number > last + 1)
						s->missed += o.frame_number - last - 1;
					s->distinct++;
					last = o.frame_number;
				}
			}
		}
		if (with_ref) {	/* the reference: the ram loop into the same dst */
			uint64_t r0 = now_ns();

			if (raw_copy(f->dst, f->ref, fb_bytes, M_RAM, cut_at))
				break;
			s->ref_ns += now_ns() - r0;
			s->ref_reads++;
		}
	}
	os_alarm(0);
	s->wall_ns = now_ns() - t0;
	s->cpu_ns = os_cpu_ns() - c0;
}

static void fb_phase_report(struct result *r, const struct tp_stats *s, const char *sfx,
			    bool seqlock, uint32_t fps)
{
	const char *phase = seqlock ? "with the seqlock" : "without the seqlock";
	uint64_t period = fps ? 1000000000ull / fps : 0;

	tp_metrics(r, s, sfx);
	/* the same frame read again and again is a stalled engine, not throughput */
	if (s->distinct == 1 && s->frames > 1 && period && s->wall_ns > 3 * period)
		r_fail(r, "the frames stopped changing %s: 1 distinct frame in %.1f s at %u fps "
		       "(a stalled frame engine; its reads are not throughput)", phase,
		       (double)s->wall_ns / 1e9, fps);
	if (s->err)
		r_fail(r, "read %s failed: %s", phase, os_strerror(s->err));
	if (seqlock && s->torn)
		r_fail(r, "%llu torn frames despite the seqlock", (unsigned long long)s->torn);
	if (s->cut)
		r_dstr(r, *sfx ? "cut_no_seqlock" : "cut",
		       "a read still running 5 s after the phase ended was cut off and not counted");
	if (!s->frames && !s->err)
		r_dstr(r, *sfx ? "note_no_seqlock" : "note", seqlock ?
		       "no consistent frame: one read takes longer than a frame period" :
		       "no whole frame read in the phase");
}

static int cmd_fb_throughput(struct probe_opts *o)
{
	const char *method = o->method ? o->method : "copy";
	const char *seqlock_mode = o->seqlock;
	struct fb_buf dst = { 0 }, ref = { 0 }, src = { 0 };
	struct hilbox_info in;
	struct tp_stats s1, s2, *bw;
	struct fb_run f;
	struct result r;
	enum fb_method m;
	const uint8_t *mapped = NULL, *peer = NULL;
	size_t peer_len = 0;
	bool both = !strcmp(seqlock_mode, "both");
	bool lock = strcmp(seqlock_mode, "off") != 0;
	char name[64];
	os_err e;
	os_handle h;

	for (m = M_COPY; m <= M_RAM; m++)
		if (!strcmp(method, method_name[m]))
			break;
	if (m > M_RAM) {
		dbg("unknown method %s", method);
		return 2;
	}
	if (o->peer_bar && (m == M_COPY || m == M_RAM)) {
		dbg("--peer-bar reads a mapping: --method map, qword or bytewise");
		return 2;
	}
	snprintf(name, sizeof(name), "fb-%s", method);
	r_init(&r, "throughput", name, NULL);
	h = open_checked(&r, 0, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	info_into(&r, &in);
	r_dstr(&r, "method", method);
	memset(&f, 0, sizeof(f));
	f.h = h;
	f.in = &in;
	f.m = m;
	f.state = true;
	if (o->peer_bar) {
		f.src = peer = os_map_peer(o->peer_bar, in.fb_bytes, &peer_len, &e);
		if (!peer) {
			r_fail(&r, "map %s: %s", o->peer_bar, os_strerror(e));
			goto out_close;
		}
		f.state = false;
		r_dstr(&r, "source", o->peer_bar);
	} else if (m == M_RAM) {
		if (!fb_buf_alloc(&src, in.fb_bytes, NULL)) {
			r_fail(&r, "out of memory");
			goto out_close;
		}
		frame_fill(src.p, &in, 0);
		f.src = src.p;
		f.state = false;
		r_dstr(&r, "source", "ram");
	} else if (m != M_COPY) {
		f.src = mapped = os_map(h, &in, &e);
		if (!mapped) {
			r_fail(&r, "%s: %s", os_desc.map_op, os_strerror(e));
			goto out_close;
		}
		/* fault the whole mapping in outside the measurement */
		for (size_t i = 0; i < in.fb_bytes; i += FB_PAGE)
			(void)((const volatile uint8_t *)mapped)[i];
		r_dstr(&r, "source", "mapping");
	} else {
		r_dstr(&r, "source", "driver");
	}
	if (!f.state) {		/* no seqlock and no frame checks: one phase */
		both = false;
		lock = false;
	}
	r_dstr(&r, "seqlock", both ? "both" : lock ? "on" : "off");
	/*
	 * Odd page distances: src -> dst -> RAM reference (INTERFACE.md §6).  The
	 * RAM copies hold a frame as SPEC 4.2 draws it, computed here: reading
	 * the device for them could take seconds in fb-mode=mmio.
	 */
	if (!fb_buf_alloc(&dst, in.fb_bytes, f.src) || !fb_buf_alloc(&ref, in.fb_bytes, dst.p)) {
		r_fail(&r, "out of memory");
		goto out_unmap;
	}
	frame_fill(ref.p, &in, 0);
	f.dst = dst.p;
	f.ref = ref.p;

	fb_phase(&f, lock, !both, o->seconds, &s1);
	fb_phase_report(&r, &s1, "", lock, peer ? 0 : in.fps);
	bw = &s1;
	if (both) {
		fb_phase(&f, false, true, o->seconds, &s2);
		fb_phase_report(&r, &s2, "_no_seqlock", false, peer ? 0 : in.fps);
		bw = &s2;
	}
	{
		/* the bandwidth phase: reads and the interleaved reference of the same loop */
		double rd = (double)bw->read_ns / 1e9, rr = (double)bw->ref_ns / 1e9;
		double mb = rd > 0 ? (double)bw->bytes / rd / 1e6 : 0;
		double ram = rr > 0 ? (double)bw->ref_reads * (double)in.fb_bytes / rr / 1e6 : 0;

		r_metric(&r, "read_mb_per_s", mb, "MB/s");
		if (ram > 0) {
			r_metric(&r, "ram_mb_per_s", ram, "MB/s");
			r_metric(&r, "ram_ratio", mb / ram, "x RAM");
		}
	}
out_unmap:
	if (mapped)
		os_unmap(h, mapped, &in);
	if (peer)
		os_unmap_peer(peer, peer_len);
out_close:
	os_close(h);
out:
	free(src.raw);
	free(ref.raw);
	free(dst.raw);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static int cmd_read_events(struct probe_opts *o)
{
	uint64_t deadline = now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
	struct hilbox_event ev[16];
	struct hilbox_info in;
	struct ev_acc a;
	struct result r;
	size_t got, i;
	os_err e;
	os_handle h;

	memset(&a, 0, sizeof(a));
	r_init(&r, "events", "read-events", NULL);
	h = open_checked(&r, OS_OPEN_ASYNC, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	e = os_set_events(h, 1, o->flush ? HILBOX_EVCTL_FLUSH : 0);
	if (e) {
		r_fail(&r, "%s: %s", os_desc.events_op, os_strerror(e));
		goto out_close;
	}
	while (a.n < o->count) {
		int64_t left = ((int64_t)deadline - (int64_t)now_ns()) / 1000000;
		uint64_t want = o->count - a.n < 16 ? o->count - a.n : 16;

		if (left <= 0) {
			r_fail(&r, "timed out after %llu of %llu records",
			       (unsigned long long)a.n, (unsigned long long)o->count);
			break;
		}
		e = os_read(h, ev, (size_t)want * EV_SZ, (unsigned int)(left < 500 ? left : 500), &got);
		if (e == OS_ETIMEOUT)
			continue;
		if (e) {
			r_fail(&r, "%s: %s", os_desc.read_op, os_strerror(e));
			break;
		}
		if (got % EV_SZ) {
			r_fail(&r, "%s returned %lu bytes, not whole records", os_desc.read_op,
			       (unsigned long)got);
			break;
		}
		for (i = 0; i < got / EV_SZ; i++)
			acc_add(&a, &ev[i], 0);
	}
	read_events_report(&r, &a);
out_close:
	os_close(h);
out:
	r_emit(&r);
	return 0;
}

static unsigned int run_read_records(const struct probe_opts *o)
{
	return o->read_records < 1 ? 1 : o->read_records > 16 ? 16 : o->read_records;
}

static int cmd_events_throughput(struct probe_opts *o)
{
	size_t cap = (size_t)(o->seconds * 20000) + 1024;
	unsigned int pending = o->pending;
	struct hilbox_stats st0, st1;
	struct hilbox_info in;
	struct ev_acc a;
	struct ev_run run;
	struct result r;
	uint64_t t0, c0;
	const char *mode;
	char name[64];
	bool async = false;
	os_err e;
	os_handle h;

	mode = os_ev_mode(o->mode, &async);
	if (!mode)
		return 2;
	memset(&a, 0, sizeof(a));
	a.lat = calloc(cap, sizeof(uint64_t));
	a.lat_cap = a.lat ? cap : 0;
	a.seqs = calloc(cap, sizeof(uint64_t));
	a.seqs_cap = a.seqs ? cap : 0;
	snprintf(name, sizeof(name), "events-%s", mode);
	r_init(&r, "throughput", name, NULL);
	if (!pending)
		pending = 1;
	if (os_desc.max_pending && pending > os_desc.max_pending)
		pending = os_desc.max_pending;
	h = open_checked(&r, async ? OS_OPEN_ASYNC : 0, &in);
	if (h == OS_NO_HANDLE)
		goto out;
	r_dstr(&r, "mode", mode);
	r_dnum(&r, "pending", pending);
	r_dnum(&r, "read_records", run_read_records(o));
	r_dnum(&r, "ev_rate_hz", in.ev_rate_hz);
	r_dnum(&r, "ev_bundle", in.ev_bundle);
	e = os_set_events(h, 1, HILBOX_EVCTL_FLUSH);
	if (e) {
		r_fail(&r, "%s: %s", os_desc.events_op, os_strerror(e));
		goto out_close;
	}
	os_stats(h, &st0);
	t0 = now_ns();
	c0 = os_cpu_ns();
	memset(&run, 0, sizeof(run));
	run.r = &r;
	run.h = h;
	run.in = &in;
	run.a = &a;
	run.cap = cap;
	run.pending = pending;
	run.read_records = run_read_records(o);
	run.deadline = t0 + (uint64_t)(o->seconds * 1e9);
	run.ordered = true;
	switch (os_ev_run(&run, o->mode)) {
	case EV_USAGE:
		os_close(h);
		free(a.lat);
		free(a.seqs);
		return 2;
	case EV_ABORT:
		goto out_close;
	case EV_REPORT:
		break;
	}
	{
		uint64_t wall = now_ns() - t0, cpu = os_cpu_ns() - c0;

		os_set_events(h, 0, 0);
		os_stats(h, &st1);
		ev_tp_report(&r, &a, &st0, &st1, wall, cpu, o->seconds, run.ordered);
	}
out_close:
	os_close(h);
out:
	free(a.lat);
	free(a.seqs);
	r_emit(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* security (the cases are in probe_cases.c)                           */

static int cmd_write_mapping(struct probe_opts *o)
{
	(void)o;
	return core_write_mapping();
}

static int cmd_fb_consume(struct probe_opts *o)
{
	return core_fb_consume(o);
}

static int cmd_security(struct probe_opts *o)
{
	if (!o->list && !o->sec_case)
		return -1;
	if (o->sec_case && !strcmp(o->sec_case, "unplug-check") && o->have_timeout_ms)
		o->max_wait_s = (o->timeout_ms + 999) / 1000;
	return core_security(o->sec_case ? o->sec_case : "", o->list, o->max_wait_s);
}

/* ------------------------------------------------------------------ */
/* main                                                                */

/* A command's result: 0 (exit g_failed), 2 (usage error), -1 (usage text, then 2). */
static const struct command {
	const char *name;
	int (*run)(struct probe_opts *o);
} commands[] = {
	{ "info", cmd_info },
	{ "verify-frames", cmd_verify_frames },
	{ "read-events", cmd_read_events },
	{ "dump-frame", cmd_dump_frame },
	{ "write-mapping", cmd_write_mapping },
	{ "fb-throughput", cmd_fb_throughput },
	{ "fb-consume", cmd_fb_consume },
	{ "events-throughput", cmd_events_throughput },
	{ "security", cmd_security },
};

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [--dev %s] COMMAND [options]\n"
		"  info\n"
		"  verify-frames [--frames N] [--method copy|map|both] [--timeout-s T]\n"
		"  read-events [--count N] [--timeout-ms T] [--flush]\n"
		"  write-mapping\n"
		"  dump-frame --out FILE            (raw rgb24 + FILE.json)\n"
		"  fb-throughput --method map|copy|bytewise|qword|ram [--seconds S]\n"
		"                [--seqlock on|off|both] [--peer-bar FILE]\n"
		"  fb-consume --method map|copy|bytewise|qword [--seconds S] [--seqlock on|off|both]\n"
		"%s"
		"  security --list | --case NAME|all [--state-dir D] [--max-wait-s S]\n"
		"           NAME also unplug-prepare, unplug-check\n",
		os_desc.exe, os_desc.dev_usage, os_desc.events_usage);
}

int main(int argc, char **argv)
{
	struct probe_opts o;
	const char *cmd;
	size_t c;
	int i = 1, ret;

	os_init();
	snprintf(g_state_dir, sizeof(g_state_dir), "%s", os_desc.state_dir);
	if (i + 1 < argc && !strcmp(argv[i], "--dev")) {
		g_dev = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	cmd = argv[i++];
	ret = os_early_command(cmd, argc, argv, i);
	if (ret >= 0)
		return ret;
	opts_init(&o, os_desc.default_mode);
	if (opts_parse(&o, argc, argv, i)) {
		usage();
		return 2;
	}
	if (o.state_dir)
		snprintf(g_state_dir, sizeof(g_state_dir), "%s", o.state_dir);

	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (!strcmp(cmd, commands[c].name))
			break;
	if (c == sizeof(commands) / sizeof(commands[0])) {
		ret = os_late_command(cmd, &o);
		if (ret >= 0)
			return ret;
		usage();
		return 2;
	}
	ret = commands[c].run(&o);
	if (ret < 0) {
		usage();
		return 2;
	}
	return ret ? ret : g_failed;
}
