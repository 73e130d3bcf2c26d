/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe_core.h - the OS-neutral helpers of the hilbox probe (guest-probe/README.md).
 *
 * Used by the core (probe_main.c, probe_cases.c) and by the OS files of
 * guest-probe/linux and guest-probe/windows, so that both probes print the same
 * result objects (docs/results-schema.md) with the same case, metric and
 * detail names: JSON emission, the spec pixel function and frame checks,
 * user-space framebuffer copies, event accumulators and latency percentiles,
 * the reports both probes give in the same words, and the command-line
 * options.
 *
 * Plain C11 with the C standard library only; the ABI structs come from
 * hilbox_uapi.h.  The OS primitives (probe_os.h) provide now_ns() and g_dev.
 */
#ifndef HILBOX_PROBE_CORE_H
#define HILBOX_PROBE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hilbox_uapi.h"

#ifdef __MINGW_PRINTF_FORMAT
#define PROBE_PRINTF(f, a)	__attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#else
#define PROBE_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#endif

/* ------------------------------------------------------------------ */
/* provided by the OS files (guest-probe/<os>, see probe_os.h)        */

extern const char *g_dev;	/* the device node / path the probe opens */
uint64_t now_ns(void);		/* monotonic clock in ns */

/* ------------------------------------------------------------------ */
/* small utilities                                                     */

extern int g_failed;		/* a failed result was emitted: exit status 1 */

void dbg(const char *fmt, ...) PROBE_PRINTF(1, 2);
int cmp_u64(const void *a, const void *b);

/* ------------------------------------------------------------------ */
/* result objects (docs/results-schema.md)                             */

struct result {
	const char *suite;
	char name[64];
	const char *status;	/* NULL until decided: pass */
	char reason[512];
	const char *policy;
	char metrics[4096];
	size_t mlen;
	char details[8192];
	size_t dlen;
};

void json_str(char *out, size_t cap, size_t *len, const char *s);
void appendf(char *out, size_t cap, size_t *len, const char *fmt, ...) PROBE_PRINTF(4, 5);

void r_init(struct result *r, const char *suite, const char *name, const char *policy);
void r_metric(struct result *r, const char *name, double v, const char *unit);
void r_dstr(struct result *r, const char *key, const char *val);
void r_dnum(struct result *r, const char *key, double v);
void r_draw(struct result *r, const char *key, const char *json);
/* first failure wins; later checks only add details */
void r_fail(struct result *r, const char *fmt, ...) PROBE_PRINTF(2, 3);
void r_skip(struct result *r, const char *fmt, ...) PROBE_PRINTF(2, 3);
void r_emit(struct result *r);

/* a suite's case list (`security --list`): one JSON line */
struct case_list {
	char line[16384];
	size_t len;
	unsigned int n;
};

void cl_begin(struct case_list *cl, const char *suite);
/* policy NULL: none (the host-action steps) */
void cl_add(struct case_list *cl, const char *name, const char *policy, bool host_action);
void cl_print(struct case_list *cl);

/* ------------------------------------------------------------------ */
/* device information                                                  */

void info_into(struct result *r, const struct hilbox_info *in);
/* the info command's result: details, metrics, checks; st/clk NULL when unreadable */
void info_report(struct result *r, const struct hilbox_info *in,
		 const struct hilbox_stats *st, const uint64_t *clk);

/* ------------------------------------------------------------------ */
/* pixel function (SPEC 4.2)                                           */

struct verify_res {
	uint64_t bad_px;	/* pixels not matching the expected frame */
	uint64_t other_px;	/* ...of which decode to another valid frame */
	uint64_t bad_pad;	/* non-zero padding bytes */
};

/* frame n as SPEC 4.2 draws it (padding 0): fb_bytes bytes */
void frame_fill(uint8_t *buf, const struct hilbox_info *in, uint64_t n);
void verify_frame(const uint8_t *buf, const struct hilbox_info *in, uint64_t n,
		  struct verify_res *v);
/* one frame number (mod 65536) for all lines; it goes to *n16 unless NULL */
bool frame_consistent(const uint8_t *buf, const struct hilbox_info *in, uint32_t *n16);

/* verify-frames: totals of one method */
struct verify_tot {
	uint64_t bad, other, pad, t0;
	unsigned int done, torn, retries;
};

/* verifies frame n in buf and counts it; true when it was torn */
bool verify_tally(struct verify_tot *t, const uint8_t *buf, const struct hilbox_info *in,
		  uint64_t n, struct verify_res *v);
void verify_report(struct result *r, const char *method, const struct verify_tot *t);
/* bytes of BAR2 past FB_BYTES read as 0 */
void bar2_tail_check(struct result *r, const uint8_t *fb, const struct hilbox_info *in);

/* dump-frame */
void dump_verify(struct result *r, const uint8_t *buf, const struct hilbox_info *in,
		 const struct hilbox_copy_frame *cf);
/* writes the rgb24 rows and closes f; false when either failed */
bool dump_rows(FILE *f, const uint8_t *buf, const struct hilbox_info *in);
/* writes the frame's metadata file; false when that failed */
bool dump_meta(const char *path, const struct hilbox_info *in,
	       const struct hilbox_copy_frame *cf);
void dump_report(struct result *r, const char *out, const char *metapath,
		 const struct hilbox_info *in, const struct hilbox_copy_frame *cf);

/* ------------------------------------------------------------------ */
/* framebuffer copies                                                  */

enum fb_method { M_COPY, M_MAP, M_BYTEWISE, M_QWORD, M_RAM };

extern const char *const method_name[];

/* copy with a deadline check every 64 KiB; true when the deadline passed */
bool raw_copy(uint8_t *dst, const uint8_t *src, size_t len, enum fb_method m,
	      uint64_t deadline);

struct copy_out {
	uint64_t frame_number;
	uint32_t seq1, seq2;
	uint32_t retries;
};

/*
 * fb-throughput buffers: len bytes at the same offset within a page as
 * `other` and an odd number of pages away from it (other NULL: page
 * aligned).  Under TCG two buffers an even number of pages apart can share
 * slots of QEMU's direct-mapped software TLB (guest-driver/INTERFACE.md §6).
 * Free with free(b->raw).
 */
#define FB_PAGE	4096u
struct fb_buf {
	void *raw;
	uint8_t *p;
};
bool fb_buf_alloc(struct fb_buf *b, size_t len, const void *other);

/* fb-throughput: one phase (guest-driver/INTERFACE.md §6) */
struct tp_stats {
	uint64_t frames;	/* delivered: consistent (seqlock) or any (none) */
	uint64_t reads;		/* whole-frame reads, retried attempts included */
	uint64_t bytes;		/* reads x fb_bytes */
	uint64_t read_ns;	/* inside the reads: the timed region */
	uint64_t wait_ns;	/* seqlock waits before a read */
	uint64_t torn, seq_mismatch, retries, missed, distinct;
	uint64_t giveups;
	uint64_t ref_reads, ref_ns;	/* the interleaved RAM reference */
	uint64_t wall_ns, cpu_ns;
	bool checked;		/* the frames were checked (hilbox frames) */
	bool cut;		/* a read was cut off at the phase's hard limit */
	unsigned long err;	/* errno (Linux), Win32 error (Windows) */
};

void tp_metrics(struct result *r, const struct tp_stats *s, const char *sfx);

/* ------------------------------------------------------------------ */
/* events                                                              */

struct ev_acc {
	uint64_t n, first, last, gaps, order_viol, dup, errors;
	uint64_t completions;	/* reads / CQEs / ring wake-ups that carried records */
	uint64_t split;		/* completions ending inside a report (no END_OF_REPORT last) */
	uint64_t retries;	/* completions with EAGAIN (io_uring workers), issued again */
	uint64_t *lat;
	size_t lat_n, lat_cap;
	uint64_t *seqs;		/* every seq received, for the global check */
	size_t seqs_n, seqs_cap;
};

/* lost = missing seq numbers, dup = seq numbers seen twice (any order) */
void acc_global(struct ev_acc *a, uint64_t *lost, uint64_t *dup);
void acc_add(struct ev_acc *a, const struct hilbox_event *e, uint64_t clk);
/* one completion that carried records, the last of them *last */
void acc_completion(struct ev_acc *a, const struct hilbox_event *last);
void lat_metrics(struct result *r, struct ev_acc *a);

void read_events_report(struct result *r, const struct ev_acc *a);
/* events-throughput; ordered: completion order is expected to follow seq */
void ev_tp_report(struct result *r, struct ev_acc *a, const struct hilbox_stats *st0,
		  const struct hilbox_stats *st1, uint64_t wall, uint64_t cpu,
		  double seconds, bool ordered);

/* ------------------------------------------------------------------ */
/* command-line options                                                */

struct probe_opts {
	const char *method, *mode, *out, *seqlock, *sec_case, *state_dir, *peer_bar;
	double seconds;
	uint64_t count;
	unsigned int frames, pending, timeout_s;
	unsigned int read_records;	/* events-throughput: records per read buffer */
	int timeout_ms, max_wait_s;
	bool flush, list, have_timeout_ms;
};

void opts_init(struct probe_opts *o, const char *mode);
/* options from argv[i] on (--dev sets g_dev); -1 on an unknown argument (said on stderr) */
int opts_parse(struct probe_opts *o, int argc, char **argv, int i);

#endif /* HILBOX_PROBE_CORE_H */
