// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * probe_core.c - the OS-neutral part of the hilbox probe tools (see probe_core.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe_core.h"

int g_failed;

/* ------------------------------------------------------------------ */
/* small utilities                                                     */

void dbg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("hilbox-probe: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* result objects (docs/results-schema.md)                             */

void json_str(char *out, size_t cap, size_t *len, const char *s)
{
	size_t l = *len;

#define PUT(c) do { if (l + 1 < cap) out[l++] = (c); } while (0)
	PUT('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			PUT('\\');
			PUT((char)c);
		} else if (c == '\n') {
			PUT('\\');
			PUT('n');
		} else if (c < 0x20) {
			if (l + 7 < cap)
				l += (size_t)snprintf(out + l, cap - l, "\\u%04x", c);
		} else {
			PUT((char)c);
		}
	}
	PUT('"');
#undef PUT
	out[l < cap ? l : cap - 1] = 0;
	*len = l;
}

void appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

static void fmt_num(char *buf, size_t cap, double v)
{
	if (v == (double)(long long)v && v < 1e17 && v > -1e17)
		snprintf(buf, cap, "%lld", (long long)v);
	else
		snprintf(buf, cap, "%.6g", v);
}

void r_init(struct result *r, const char *suite, const char *name, const char *policy)
{
	memset(r, 0, sizeof(*r));
	r->suite = suite;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->policy = policy;
}

void r_metric(struct result *r, const char *name, double v, const char *unit)
{
	char num[64];

	fmt_num(num, sizeof(num), v);
	appendf(r->metrics, sizeof(r->metrics), &r->mlen, "%s", r->mlen ? "," : "");
	json_str(r->metrics, sizeof(r->metrics), &r->mlen, name);
	appendf(r->metrics, sizeof(r->metrics), &r->mlen, ":{\"value\":%s,\"unit\":", num);
	json_str(r->metrics, sizeof(r->metrics), &r->mlen, unit);
	appendf(r->metrics, sizeof(r->metrics), &r->mlen, "}");
}

static void r_dkey(struct result *r, const char *key)
{
	appendf(r->details, sizeof(r->details), &r->dlen, "%s", r->dlen ? "," : "");
	json_str(r->details, sizeof(r->details), &r->dlen, key);
	appendf(r->details, sizeof(r->details), &r->dlen, ":");
}

void r_dstr(struct result *r, const char *key, const char *val)
{
	r_dkey(r, key);
	json_str(r->details, sizeof(r->details), &r->dlen, val);
}

void r_dnum(struct result *r, const char *key, double v)
{
	char num[64];

	fmt_num(num, sizeof(num), v);
	r_dkey(r, key);
	appendf(r->details, sizeof(r->details), &r->dlen, "%s", num);
}

void r_draw(struct result *r, const char *key, const char *json)
{
	r_dkey(r, key);
	appendf(r->details, sizeof(r->details), &r->dlen, "%s", json);
}

void r_fail(struct result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->status && !strcmp(r->status, "fail"))
		return;
	r->status = "fail";
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

void r_skip(struct result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->status)
		return;
	r->status = "skip";
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

void r_emit(struct result *r)
{
	char line[16384];
	size_t l = 0;

	if (!r->status)
		r->status = "pass";
	if (!strcmp(r->status, "fail"))
		g_failed = 1;
	appendf(line, sizeof(line), &l, "{\"suite\":");
	json_str(line, sizeof(line), &l, r->suite);
	appendf(line, sizeof(line), &l, ",\"name\":");
	json_str(line, sizeof(line), &l, r->name);
	appendf(line, sizeof(line), &l, ",\"status\":\"%s\"", r->status);
	if (r->reason[0]) {
		appendf(line, sizeof(line), &l, ",\"reason\":");
		json_str(line, sizeof(line), &l, r->reason);
	}
	if (r->policy) {
		appendf(line, sizeof(line), &l, ",\"policy\":");
		json_str(line, sizeof(line), &l, r->policy);
	}
	appendf(line, sizeof(line), &l, ",\"metrics\":{%s},\"details\":{%s}}",
		r->metrics, r->details);
	printf("%s\n", line);
	fflush(stdout);
}

void cl_begin(struct case_list *cl, const char *suite)
{
	cl->len = 0;
	cl->n = 0;
	appendf(cl->line, sizeof(cl->line), &cl->len, "{\"suite\":");
	json_str(cl->line, sizeof(cl->line), &cl->len, suite);
	appendf(cl->line, sizeof(cl->line), &cl->len, ",\"cases\":[");
}

void cl_add(struct case_list *cl, const char *name, const char *policy, bool host_action)
{
	appendf(cl->line, sizeof(cl->line), &cl->len, "%s{\"name\":", cl->n++ ? "," : "");
	json_str(cl->line, sizeof(cl->line), &cl->len, name);
	if (policy) {
		appendf(cl->line, sizeof(cl->line), &cl->len, ",\"policy\":");
		json_str(cl->line, sizeof(cl->line), &cl->len, policy);
	}
	appendf(cl->line, sizeof(cl->line), &cl->len, ",\"host_action\":%s}",
		host_action ? "true" : "false");
}

void cl_print(struct case_list *cl)
{
	appendf(cl->line, sizeof(cl->line), &cl->len, "]}");
	printf("%s\n", cl->line);
}

/* ------------------------------------------------------------------ */
/* device information                                                  */

void info_into(struct result *r, const struct hilbox_info *in)
{
	char caps[160];
	size_t l = 0;

	caps[0] = 0;
	appendf(caps, sizeof(caps), &l, "%s%s%s%s%s%s%s",
		in->caps & HILBOX_CAP_FB ? "fb " : "",
		in->caps & HILBOX_CAP_MOUSE ? "mouse " : "",
		in->caps & HILBOX_CAP_MSI ? "msi " : "",
		in->caps & HILBOX_CAP_FEED ? "feed " : "",
		in->caps & HILBOX_CAP_INPUT ? "input " : "",
		in->caps & HILBOX_CAP_GEN ? "gen " : "",
		in->caps & HILBOX_CAP_FB_MMIO ? "fb_mmio " : "");
	if (l)
		caps[l - 1] = 0;
	r_dstr(r, "device", g_dev);
	r_dnum(r, "abi_version", in->abi_version);
	r_dnum(r, "dev_version", in->dev_version);
	r_dnum(r, "caps", in->caps);
	r_dstr(r, "caps_names", caps);
	r_dstr(r, "fb_mode", in->fb_mode == HILBOX_FB_MODE_MMIO ? "mmio" : "direct");
	r_dstr(r, "irq", in->drv_flags & HILBOX_DRV_MSI ? "msi" : "intx");
	r_dnum(r, "format", in->format);
	r_dnum(r, "instance", in->instance);
}

void info_report(struct result *r, const struct hilbox_info *in,
		 const struct hilbox_stats *st, const uint64_t *clk)
{
	info_into(r, in);
	r_metric(r, "width", in->width, "px");
	r_metric(r, "height", in->height, "px");
	r_metric(r, "stride", in->stride, "B");
	r_metric(r, "fps", in->fps, "1/s");
	r_metric(r, "fb_bytes", in->fb_bytes, "B");
	r_metric(r, "bar2_size", (double)in->bar2_size, "B");
	r_metric(r, "mmio_latency", in->mmio_latency_ns, "ns");
	r_metric(r, "ev_fifo_depth", in->ev_fifo_depth, "records");
	r_metric(r, "ev_rate", in->ev_rate_hz, "Hz");
	r_metric(r, "ev_bundle", in->ev_bundle, "packets");
	r_metric(r, "ring_size", in->ring_size, "records");
	if (st) {
		r_metric(r, "frames_produced", (double)st->frames_produced, "frames");
		r_metric(r, "frame_number", (double)st->frame_number, "frame");
		r_metric(r, "fb_write_attempts", (double)st->fb_write_attempts, "writes");
		r_metric(r, "ev_produced", (double)st->ev_produced, "events");
		r_metric(r, "ev_delivered", (double)st->ev_delivered, "events");
		r_metric(r, "ev_dropped", (double)st->ev_dropped, "events");
		r_metric(r, "drv_ring_drops", (double)st->drv_ring_drops, "events");
		r_metric(r, "irq_count", (double)st->irq_count, "irqs");
		r_metric(r, "link_downs", (double)st->link_downs, "times");
		r_metric(r, "fallback_drains", (double)st->fallback_drains, "drains");
		r_metric(r, "irq_storms", (double)st->irq_storms, "times");
		r_metric(r, "irq_spurious", (double)st->irq_spurious, "irqs");
	}
	if (clk)
		r_metric(r, "device_clock", (double)*clk, "ns");
	if (in->abi_version >> 16 != HILBOX_ABI_VERSION_MAJOR)
		r_fail(r, "driver ABI %#x, probe built for %#x", in->abi_version, HILBOX_ABI_VERSION);
	if (in->format != HILBOX_FORMAT_RGB24)
		r_fail(r, "unexpected format %u", in->format);
}

/* ------------------------------------------------------------------ */
/* pixel function (SPEC 4.2)                                           */

void frame_fill(uint8_t *buf, const struct hilbox_info *in, uint64_t n)
{
	uint32_t n0 = n & 0xff, n1 = (n >> 8) & 0xff;
	uint32_t x, y;

	memset(buf, 0, in->fb_bytes);	/* padding reads 0 */
	for (y = 0; y < in->height; y++) {
		uint8_t *row = buf + (size_t)y * in->stride;
		uint32_t by = (y ^ n1) & 0xff;

		for (x = 0; x < in->width; x++) {
			row[3 * x] = (uint8_t)(x + n0);
			row[3 * x + 1] = (uint8_t)(y + n0);
			row[3 * x + 2] = (uint8_t)(x ^ by);
		}
	}
}

void verify_frame(const uint8_t *buf, const struct hilbox_info *in, uint64_t n,
		  struct verify_res *v)
{
	uint32_t n0 = n & 0xff, n1 = (n >> 8) & 0xff;
	uint32_t x, y;

	memset(v, 0, sizeof(*v));
	for (y = 0; y < in->height; y++) {
		const uint8_t *row = buf + (size_t)y * in->stride;
		uint8_t g = (uint8_t)(y + n0);
		uint32_t by = (y ^ n1) & 0xff;

		for (x = 0; x < in->width; x++) {
			const uint8_t *p = row + 3 * (size_t)x;

			if (p[0] == (uint8_t)(x + n0) && p[1] == g &&
			    p[2] == (uint8_t)(x ^ by))
				continue;
			v->bad_px++;
			/* decode the pixel's own frame number (mod 65536) */
			if (p[1] == (uint8_t)(y + (uint8_t)(p[0] - x)))
				v->other_px++;
		}
		for (x = 3 * in->width; x < in->stride; x++)
			if (row[x])
				v->bad_pad++;
	}
}

/*
 * Cheap tear detector for throughput runs: decode one pixel per line
 * (and the last one) and require one frame number for all of them.
 */
bool frame_consistent(const uint8_t *buf, const struct hilbox_info *in, uint32_t *n16)
{
	uint32_t y, first = 0;
	bool have = false;

	for (y = 0; y <= in->height; y++) {
		uint32_t yy = y < in->height ? y : in->height - 1;
		uint32_t x = y < in->height ? (y * 131u) % in->width : in->width - 1;
		const uint8_t *p = buf + (size_t)yy * in->stride + 3 * (size_t)x;
		uint32_t lo = (uint8_t)(p[0] - x);
		uint32_t hi = (p[2] ^ x ^ yy) & 0xff;
		uint32_t dec = hi << 8 | lo;

		if (p[1] != (uint8_t)(yy + lo))
			return false;
		if (!have) {
			first = dec;
			have = true;
		} else if (dec != first) {
			return false;
		}
	}
	if (n16)
		*n16 = first;
	return true;
}

bool verify_tally(struct verify_tot *t, const uint8_t *buf, const struct hilbox_info *in,
		  uint64_t n, struct verify_res *v)
{
	bool torn;

	verify_frame(buf, in, n, v);
	t->bad += v->bad_px;
	t->other += v->other_px;
	t->pad += v->bad_pad;
	torn = v->bad_px || v->bad_pad;
	if (torn)
		t->torn++;
	t->done++;
	return torn;
}

void verify_report(struct result *r, const char *method, const struct verify_tot *t)
{
	char key[64];

	snprintf(key, sizeof(key), "%s_frames_verified", method);
	r_metric(r, key, t->done, "frames");
	snprintf(key, sizeof(key), "%s_mismatched_pixels", method);
	r_metric(r, key, (double)t->bad, "px");
	snprintf(key, sizeof(key), "%s_torn_frames", method);
	r_metric(r, key, t->torn, "frames");
	snprintf(key, sizeof(key), "%s_seqlock_retries", method);
	r_metric(r, key, t->retries, "retries");
	snprintf(key, sizeof(key), "%s_seconds", method);
	r_metric(r, key, (double)(now_ns() - t->t0) / 1e9, "s");
	if (t->bad || t->pad)
		r_fail(r, "%s: %llu mismatched pixels (%llu decode to another frame), %llu non-zero padding bytes in %u frames",
		       method, (unsigned long long)t->bad, (unsigned long long)t->other,
		       (unsigned long long)t->pad, t->torn);
}

void bar2_tail_check(struct result *r, const uint8_t *fb, const struct hilbox_info *in)
{
	uint64_t tail_bad = 0, i;

	for (i = in->fb_bytes; i < in->bar2_size; i++)
		if (fb[i])
			tail_bad++;
	r_metric(r, "bar2_tail_nonzero", (double)tail_bad, "B");
	if (tail_bad)
		r_fail(r, "%llu non-zero bytes past FB_BYTES in BAR2", (unsigned long long)tail_bad);
}

void dump_verify(struct result *r, const uint8_t *buf, const struct hilbox_info *in,
		 const struct hilbox_copy_frame *cf)
{
	struct verify_res v;

	verify_frame(buf, in, cf->frame_number, &v);
	r_metric(r, "mismatched_pixels", (double)v.bad_px, "px");
	if (v.bad_px)
		r_fail(r, "frame %llu has %llu mismatched pixels",
		       (unsigned long long)cf->frame_number, (unsigned long long)v.bad_px);
}

bool dump_rows(FILE *f, const uint8_t *buf, const struct hilbox_info *in)
{
	uint32_t y;

	for (y = 0; y < in->height; y++)
		if (fwrite(buf + (size_t)y * in->stride, 3, in->width, f) != in->width)
			break;
	return !fclose(f) && y == in->height;
}

bool dump_meta(const char *path, const struct hilbox_info *in,
	       const struct hilbox_copy_frame *cf)
{
	char meta[1024];
	FILE *f;

	snprintf(meta, sizeof(meta),
		 "{\"format\":\"rgb24\",\"width\":%u,\"height\":%u,\"frame_number\":%llu,\"frame_timestamp\":%llu,\"frame_seq\":%u,\"retries\":%u}\n",
		 in->width, in->height, (unsigned long long)cf->frame_number,
		 (unsigned long long)cf->frame_timestamp, cf->frame_seq, cf->retries);
	f = fopen(path, "w");
	return f && fputs(meta, f) >= 0 && !fclose(f);
}

void dump_report(struct result *r, const char *out, const char *metapath,
		 const struct hilbox_info *in, const struct hilbox_copy_frame *cf)
{
	r_dstr(r, "file", out);
	r_dstr(r, "meta", metapath);
	r_dstr(r, "format", "rgb24");
	r_dnum(r, "width", in->width);
	r_dnum(r, "height", in->height);
	r_dnum(r, "frame_number", (double)cf->frame_number);
	r_dnum(r, "frame_timestamp", (double)cf->frame_timestamp);
	r_metric(r, "frame_number", (double)cf->frame_number, "frame");
	r_metric(r, "retries", cf->retries, "retries");
	r_metric(r, "copy_time", (double)cf->copy_ns, "ns");
}

/* ------------------------------------------------------------------ */
/* framebuffer copies                                                  */

const char *const method_name[] = { "copy", "map", "bytewise", "qword", "ram" };

bool raw_copy(uint8_t *dst, const uint8_t *src, size_t len, enum fb_method m,
	      uint64_t deadline)
{
	size_t off, chunk, i;

	for (off = 0; off < len; off += chunk) {
		chunk = len - off < 65536 ? len - off : 65536;
		if (m == M_BYTEWISE || (m == M_QWORD && (chunk & 7))) {
			const volatile uint8_t *s = src + off;

			for (i = 0; i < chunk; i++)
				dst[off + i] = s[i];
		} else if (m == M_QWORD) {
			const volatile uint64_t *s = (const volatile uint64_t *)(src + off);
			uint64_t *d = (uint64_t *)(dst + off);

			for (i = 0; i < chunk / 8; i++)
				d[i] = s[i];
		} else {
			memcpy(dst + off, src + off, chunk);
		}
		if (deadline && now_ns() > deadline)
			return true;
	}
	return false;
}

bool fb_buf_alloc(struct fb_buf *b, size_t len, const void *other)
{
	uintptr_t o = (uintptr_t)other, p;

	b->raw = malloc(len + 3 * FB_PAGE);
	if (!b->raw)
		return false;
	p = ((uintptr_t)b->raw + FB_PAGE - 1) & ~(uintptr_t)(FB_PAGE - 1);
	if (other) {
		p += o & (FB_PAGE - 1);
		/* (p - o) is a multiple of the page; its page count must be odd */
		if (!(((p - o) / FB_PAGE) & 1))
			p += FB_PAGE;
	}
	b->p = (uint8_t *)p;
	memset(b->p, 0, len);	/* populated before any timing */
	return true;
}

void tp_metrics(struct result *r, const struct tp_stats *s, const char *sfx)
{
	double wall = (double)s->wall_ns / 1e9;
	double rd = (double)s->read_ns / 1e9;
	/* the phase's own time: without the interleaved reference's reads */
	double own = (double)(s->wall_ns - (s->ref_ns < s->wall_ns ? s->ref_ns : 0)) / 1e9;
	char k[64];

	if (wall <= 0)
		wall = 1e-9;
	if (own <= 0)
		own = 1e-9;
#define M(name, val, unit) do { \
		snprintf(k, sizeof(k), "%s%s", name, sfx); \
		r_metric(r, k, val, unit); \
	} while (0)
	/* bytes of frame data read per second spent reading */
	M("mb_per_s", rd > 0 ? (double)s->bytes / rd / 1e6 : 0, "MB/s");
	M("frames_read", (double)s->reads, "frames");
	M("read_time", rd, "s");
	M("wait_time", (double)s->wait_ns / 1e9, "s");
	M("frames_per_s", (double)s->frames / own, "frames/s");
	M("frames_copied", (double)s->frames, "frames");
	if (s->checked) {
		M("distinct_frames", (double)s->distinct, "frames");
		M("frames_missed", (double)s->missed, "frames");
		M("torn_frames", (double)s->torn, "frames");
		M("seq_mismatch", (double)s->seq_mismatch, "frames");
		M("seqlock_retries", (double)s->retries, "retries");
		M("seqlock_giveups", (double)s->giveups, "copies");
	}
	M("cpu_time", (double)s->cpu_ns / 1e9, "s");
	M("cpu_percent", s->wall_ns ? (double)s->cpu_ns / (double)s->wall_ns * 100.0 : 0, "%");
	M("wall_time", wall, "s");
#undef M
}

/* ------------------------------------------------------------------ */
/* events                                                              */

void acc_global(struct ev_acc *a, uint64_t *lost, uint64_t *dup)
{
	size_t j;

	*lost = 0;
	*dup = 0;
	if (!a->seqs_n)
		return;
	qsort(a->seqs, a->seqs_n, sizeof(uint64_t), cmp_u64);
	for (j = 1; j < a->seqs_n; j++) {
		if (a->seqs[j] == a->seqs[j - 1])
			(*dup)++;
		else if (a->seqs[j] > a->seqs[j - 1] + 1)
			*lost += a->seqs[j] - a->seqs[j - 1] - 1;
	}
	a->first = a->seqs[0];
	a->last = a->seqs[a->seqs_n - 1];
}

void acc_add(struct ev_acc *a, const struct hilbox_event *e, uint64_t clk)
{
	if (!a->n) {
		a->first = e->seq;
	} else if (e->seq <= a->last) {
		if (e->seq == a->last)
			a->dup++;
		else
			a->order_viol++;
	} else if (e->seq > a->last + 1) {
		a->gaps += e->seq - a->last - 1;
	}
	if (e->seq > a->last || !a->n)
		a->last = e->seq;
	a->n++;
	if (a->seqs_n < a->seqs_cap)
		a->seqs[a->seqs_n++] = e->seq;
	if (clk && a->lat_n < a->lat_cap)
		a->lat[a->lat_n++] = clk > e->timestamp_ns ? clk - e->timestamp_ns : 0;
}

void acc_completion(struct ev_acc *a, const struct hilbox_event *last)
{
	a->completions++;
	if (!(last->flags & HILBOX_EVF_END_OF_REPORT))
		a->split++;
}

void lat_metrics(struct result *r, struct ev_acc *a)
{
	if (!a->lat_n)
		return;
	qsort(a->lat, a->lat_n, sizeof(a->lat[0]), cmp_u64);
	r_metric(r, "latency_p50", (double)a->lat[a->lat_n / 2], "ns");
	r_metric(r, "latency_p99", (double)a->lat[(a->lat_n * 99) / 100], "ns");
	r_metric(r, "latency_max", (double)a->lat[a->lat_n - 1], "ns");
	r_metric(r, "latency_samples", (double)a->lat_n, "samples");
}

void read_events_report(struct result *r, const struct ev_acc *a)
{
	r_metric(r, "records", (double)a->n, "records");
	r_metric(r, "seq_gaps", (double)a->gaps, "events");
	r_metric(r, "order_violations", (double)(a->order_viol + a->dup), "records");
	r_dnum(r, "first_seq", (double)a->first);
	r_dnum(r, "last_seq", (double)a->last);
	if (a->order_viol || a->dup)
		r_fail(r, "%llu records out of sequence order",
		       (unsigned long long)(a->order_viol + a->dup));
}

void ev_tp_report(struct result *r, struct ev_acc *a, const struct hilbox_stats *st0,
		  const struct hilbox_stats *st1, uint64_t wall, uint64_t cpu,
		  double seconds, bool ordered)
{
	uint64_t drv_drops, dev_drops, lost, dup;

	acc_global(a, &lost, &dup);
	drv_drops = st1->drv_ring_drops - st0->drv_ring_drops;
	dev_drops = st1->ev_dropped - st0->ev_dropped;
	r_metric(r, "events_per_s", (double)a->n / ((double)wall / 1e9), "events/s");
	r_metric(r, "events", (double)a->n, "events");
	r_metric(r, "lost", (double)lost, "events");
	r_metric(r, "duplicates", (double)dup, "events");
	r_metric(r, "driver_ring_drops", (double)drv_drops, "events");
	r_metric(r, "device_drops", (double)dev_drops, "events");
	/* completion order; blocking readers (Linux): per reader order */
	r_metric(r, "order_violations", (double)a->order_viol, "records");
	r_metric(r, "read_errors", (double)a->errors, "reads");
	r_metric(r, "completions", (double)a->completions, "completions");
	r_metric(r, "records_per_completion",
		 a->completions ? (double)a->n / (double)a->completions : 0, "records");
	r_metric(r, "split_reports", (double)a->split, "completions");
	r_metric(r, "eagain_completions", (double)a->retries, "completions");
	r_metric(r, "cpu_us_per_1000_events",
		 a->n ? (double)cpu / 1e3 / ((double)a->n / 1000.0) : 0, "us");
	r_metric(r, "irqs", (double)(st1->irq_count - st0->irq_count), "irqs");
	r_metric(r, "cpu_time", (double)cpu / 1e9, "s");
	r_metric(r, "cpu_percent", (double)cpu / (double)wall * 100.0, "%");
	lat_metrics(r, a);
	r_dnum(r, "first_seq", (double)a->first);
	r_dnum(r, "last_seq", (double)a->last);
	if (!ordered)
		r_dstr(r, "note", "io-wq workers: completion order is not guaranteed, order_violations is informational");
	if (dup)
		r_fail(r, "%llu records delivered twice", (unsigned long long)dup);
	/*
	 * One consumer's completions come in sequence order whatever the number
	 * of reads pending (guest-driver/INTERFACE.md 3, "Strict completion
	 * order"; the ring of 3b and poll trivially): an order violation in an
	 * ordered mode is a failure.  No record may be duplicated, and every
	 * record missing from the sequence must be counted as dropped by device
	 * or driver.
	 */
	if (ordered && a->order_viol)
		r_fail(r, "%llu records completed out of sequence order",
		       (unsigned long long)a->order_viol);
	if (lost > dev_drops + drv_drops)
		r_fail(r, "%llu records missing from the sequence but only %llu counted as dropped",
		       (unsigned long long)lost, (unsigned long long)(dev_drops + drv_drops));
	if (!a->n)
		r_fail(r, "no events received in %.1f s", seconds);
}

/* ------------------------------------------------------------------ */
/* command-line options                                                */

void opts_init(struct probe_opts *o, const char *mode)
{
	memset(o, 0, sizeof(*o));
	o->mode = mode;
	o->seqlock = "both";
	o->seconds = 3;
	o->count = 100;
	o->frames = 5;
	o->pending = 16;
	o->read_records = 16;
	o->timeout_s = 120;
	o->timeout_ms = 10000;
	o->max_wait_s = 600;
}

int opts_parse(struct probe_opts *o, int argc, char **argv, int i)
{
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(s) (!strcmp(a, s) && v && (i++, 1))
		if (ARG("--frames"))
			o->frames = (unsigned int)strtoul(v, NULL, 0);
		else if (ARG("--method"))
			o->method = v;
		else if (ARG("--timeout-s"))
			o->timeout_s = (unsigned int)strtoul(v, NULL, 0);
		else if (ARG("--count"))
			o->count = strtoull(v, NULL, 0);
		else if (ARG("--timeout-ms")) {
			o->timeout_ms = atoi(v);
			o->have_timeout_ms = true;
		} else if (ARG("--out"))
			o->out = v;
		else if (ARG("--seconds"))
			o->seconds = strtod(v, NULL);
		else if (ARG("--seqlock"))
			o->seqlock = v;
		else if (ARG("--peer-bar"))
			o->peer_bar = v;
		else if (ARG("--pending"))
			o->pending = (unsigned int)strtoul(v, NULL, 0);
		else if (ARG("--read-records"))
			o->read_records = (unsigned int)strtoul(v, NULL, 0);
		else if (ARG("--mode"))
			o->mode = v;
		else if (ARG("--case"))
			o->sec_case = v;
		else if (ARG("--state-dir"))
			o->state_dir = v;
		else if (ARG("--max-wait-s"))
			o->max_wait_s = atoi(v);
		else if (ARG("--dev"))
			g_dev = v;
		else if (!strcmp(a, "--flush"))
			o->flush = true;
		else if (!strcmp(a, "--list"))
			o->list = true;
		else {
			dbg("unknown argument %s", a);
			return -1;
		}
#undef ARG
	}
	if (o->seconds <= 0 || o->seconds > 3600)
		o->seconds = 3;
	return 0;
}
