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

static void fb_phase(os_handle h, const uint8_t *src, uint8_t *dst,
		     const struct hilbox_info *in, enum fb_method m,
		     bool seqlock, double seconds, struct tp_stats *s)
{
	uint64_t t0 = now_ns(), c0 = os_cpu_ns();
	uint64_t deadline = t0 + (uint64_t)(seconds * 1e9);
	uint64_t last = UINT64_MAX;
	uint64_t user_bytes0 = g_bytes_read;
	struct copy_out o;
	uint32_t n16;
	os_err e;

	memset(s, 0, sizeof(*s));
	/* a frame copy must not outlive the phase: interrupt it */
	os_alarm(seconds + 2);
	while (!os_alarm_fired() && now_ns() < deadline) {
		memset(&o, 0, sizeof(o));
		if (m == M_RAM)
			e = raw_copy(dst, src, in->fb_bytes, M_RAM, deadline) ? OS_ETIMEOUT : 0;
		else
			e = copy_frame_any(h, src, dst, in, m, seqlock, deadline, &o);
		if (e == OS_ETIMEOUT || e == OS_EINTR) {
			s->retries += o.retries;
			break;
		}
		if (e == OS_EAGAIN) {	/* seqlock gave up on this frame */
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
		if (m != M_RAM && !frame_consistent(dst, in, &n16))
			s->torn++;
		if (m != M_RAM && o.frame_number != last) {
			if (last != UINT64_MAX && o.frame_number > last + 1)
				s->missed += o.frame_number - last - 1;
			s->distinct++;
			last = o.frame_number;
		}
	}
	os_alarm(0);
	/* user-space methods: every byte read counts, torn or partial frames included */
	s->bytes += g_bytes_read - user_bytes0;
	s->wall_ns = now_ns() - t0;
	s->cpu_ns = os_cpu_ns() - c0;
}

static int cmd_fb_throughput(struct probe_opts *o)
{
	const char *method = o->method ? o->method : "copy";
	const char *seqlock_mode = o->seqlock;
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
	os_err e;
	os_handle h;

	for (m = M_COPY; m <= M_RAM; m++)
		if (!strcmp(method, method_name[m]))
			break;
	if (m > M_RAM) {
		dbg("unknown method %s", method);
		return 2;
	}
	snprintf(name, sizeof(name), "fb-%s", method);
	r_init(&r, "throughput", name, NULL);
	h = open_checked(&r, 0, &in);
	if (h == OS_NO_HANDLE)
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
		if (!ram || os_copy(h, ram, in.fb_bytes, 0, 256, &cf)) {
			r_fail(&r, "cannot prepare the RAM frame");
			goto out_close;
		}
		fb = ram;
		both = false;
		lock = false;
	} else if (m != M_COPY) {
		fb = mapped = os_map(h, &in, &e);
		if (!fb) {
			r_fail(&r, "%s: %s", os_desc.map_op, os_strerror(e));
			goto out_close;
		}
		/* fault the whole mapping in outside the measurement */
		for (i = 0; i < in.fb_bytes; i += 4096)
			(void)((const volatile uint8_t *)fb)[i];
	}

	fb_phase(h, fb, dst, &in, m, lock, o->seconds, &s1);
	tp_metrics(&r, &s1, "");
	if (s1.err)
		r_fail(&r, "copy failed: %s", os_strerror(s1.err));
	if (lock && s1.torn)
		r_fail(&r, "%llu torn frames despite the seqlock", (unsigned long long)s1.torn);
	if (!s1.frames)
		r_dstr(&r, "note", "no consistent frame: one copy takes longer than a frame period");
	if (both) {
		fb_phase(h, fb, dst, &in, m, false, o->seconds, &s2);
		tp_metrics(&r, &s2, "_no_seqlock");
		if (s2.err)
			r_fail(&r, "copy without seqlock failed: %s", os_strerror(s2.err));
	}
	{
		/*
		 * Read bandwidth: bytes moved per second, torn or not. The seqlocked phase can
		 * report 0 when one copy outlasts a frame period (it never gets a consistent
		 * frame); the unlocked phase then still tells how fast the bytes move.
		 */
		double w1 = s1.wall_ns ? (double)s1.wall_ns / 1e9 : 1e-9;
		double bw = (double)s1.bytes / w1 / 1e6;

		if (both && s2.wall_ns) {
			double bw2 = (double)s2.bytes / ((double)s2.wall_ns / 1e9) / 1e6;

			if (bw2 > bw)
				bw = bw2;
		}
		r_metric(&r, "read_mb_per_s", bw, "MB/s");
	}
	if (mapped)
		os_unmap(h, mapped, &in);
out_close:
	os_close(h);
out:
	free(ram);
	free(dst);
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
		"                [--seqlock on|off|both]\n"
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
