/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe_os.h - what an OS gives the probe core.
 *
 * The core (probe_main.c: main, usage, commands; probe_cases.c: the security
 * case table and its runner) is plain C and calls only what is declared here.
 * guest-probe/linux and guest-probe/windows each implement all of it.
 *
 * Errors are os_err: 0 = success, otherwise the OS's own code (errno on Linux,
 * a Win32 error on Windows) or one of the OS_E* codes below, which both OSes
 * use for the same conditions.  os_strerror() turns either into the words the
 * probe prints.
 */
#ifndef HILBOX_PROBE_OS_H
#define HILBOX_PROBE_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe_core.h"

typedef intptr_t os_handle;		/* a file descriptor or a HANDLE */
#define OS_NO_HANDLE	((os_handle)-1)

typedef unsigned long os_err;
#define OS_ETIMEOUT	0xffff0001ul	/* a deadline passed / nothing arrived in time */
#define OS_EAGAIN	0xffff0002ul	/* the seqlock gave up on a frame */
#define OS_EINTR	0xffff0003ul	/* interrupted by the phase alarm */

/* os_open flags */
#define OS_OPEN_ASYNC	0x1u	/* O_NONBLOCK / FILE_FLAG_OVERLAPPED */

/* ------------------------------------------------------------------ */
/* what the OS is called and how it words things                       */

enum { OS_LINUX = 1, OS_WINDOWS = 2 };

struct probe_os_desc {
	unsigned int id;		/* OS_LINUX or OS_WINDOWS */
	const char *name;		/* "Linux" */
	const char *exe;		/* usage: program name */
	const char *dev_usage;		/* usage: the --dev argument */
	const char *events_usage;	/* usage: the events-throughput line(s) */
	const char *default_mode;	/* events-throughput --mode default */
	const char *state_dir;		/* unplug --state-dir default */
	char path_sep;
	unsigned int max_pending;	/* events-throughput --pending cap, 0 = none */
	const char *no_device_hint;	/* "<dev> does not exist (<hint>)" */
	const char *info_op, *copy_op, *events_op;	/* the three ioctls, as named in reasons */
	const char *map_op;		/* mapping BAR2, as named in reasons */
	const char *map_bar2_op;	/* ...by verify-frames */
	const char *read_op;		/* reading records */
	bool create_errno;		/* dump-frame: "cannot create F: <strerror>" */
	const char *unplug_prepare_policy, *unplug_mapped_policy, *unplug_reads_policy;
	const char *unplug_no_result;	/* why no result came, in parentheses */
};

extern const struct probe_os_desc os_desc;

/* ------------------------------------------------------------------ */
/* process, clocks, errors                                             */

void os_init(void);			/* first thing in main */
/* A hidden command run before option parsing (children the probe starts itself);
   its exit status, or -1 when cmd is none of them. */
int os_early_command(const char *cmd, int argc, char **argv, int i);
/* A hidden command run after option parsing; exit status or -1. */
int os_late_command(const char *cmd, const struct probe_opts *o);
/* Why the security cases cannot run as this user, or NULL. */
const char *os_privilege_problem(void);

uint64_t os_cpu_ns(void);		/* CPU time of the process */
void os_sleep_ms(unsigned int ms);
void os_yield(void);			/* a short pause in a seqlock spin */
const char *os_strerror(os_err e);	/* strerror / the Win32 error name */
bool os_err_no_device(os_err e);	/* the device node does not exist */
/* fb-throughput, fb-consume: interrupt a copy that outlives the phase (0 s: stop) */
void os_alarm(double seconds);
bool os_alarm_fired(void);

/* ------------------------------------------------------------------ */
/* the device                                                          */

os_handle os_open(unsigned int flags, os_err *e);	/* read-only */
void os_close(os_handle h);
os_err os_info(os_handle h, struct hilbox_info *in);
os_err os_stats(os_handle h, struct hilbox_stats *st);
os_err os_clock(os_handle h, uint64_t *dev_ns);
os_err os_frame_state(os_handle h, struct hilbox_frame_state *fs);
os_err os_set_events(os_handle h, unsigned int enable, unsigned int flags);
os_err os_copy(os_handle h, void *buf, size_t len, unsigned int flags,
	       unsigned int max_retries, struct hilbox_copy_frame *cf);
/* all of BAR2, read-only; NULL with *e set */
const uint8_t *os_map(os_handle h, const struct hilbox_info *in, os_err *e);
void os_unmap(os_handle h, const uint8_t *p, const struct hilbox_info *in);
/* fb-throughput --peer-bar: another PCI device's BAR named by `file` (Linux: its
   sysfs resource file), at least len bytes of it, read-only and shared; NULL with
   *e set.  *maplen: what to pass os_unmap_peer. */
const uint8_t *os_map_peer(const char *file, size_t len, size_t *maplen, os_err *e);
void os_unmap_peer(const uint8_t *p, size_t maplen);
/* Reads up to len bytes of records, waiting up to timeout_ms: 0 and *got, or
   OS_ETIMEOUT when nothing came (try again), or the error. */
os_err os_read(os_handle h, void *buf, size_t len, unsigned int timeout_ms, size_t *got);

/* ------------------------------------------------------------------ */
/* events-throughput                                                   */

struct ev_run {
	struct result *r;
	os_handle h;
	const struct hilbox_info *in;
	struct ev_acc *a;	/* seqs and lat have room for cap entries */
	size_t cap;
	unsigned int pending;
	unsigned int read_records;	/* records one read's buffer holds (1..16) */
	uint64_t deadline;
	bool ordered;		/* out: completions are expected in seq order */
};

enum ev_outcome { EV_REPORT, EV_ABORT, EV_USAGE };

/* The mode's name in the case name and details, or NULL (said on stderr) when
   the OS rejects it before opening; *async: open with OS_OPEN_ASYNC. */
const char *os_ev_mode(const char *mode, bool *async);
/* Reads events the mode's way until run->deadline.  EV_ABORT: r says why, no
   report; EV_USAGE: unknown mode (said on stderr), no result. */
enum ev_outcome os_ev_run(struct ev_run *run, const char *mode);

/* ------------------------------------------------------------------ */
/* security cases                                                      */

struct sec_ctx {
	struct hilbox_info in;
	os_handle h;		/* opened by the runner, read-only, synchronous */
	int max_wait_s;		/* unplug-prepare */
};

typedef void (*case_fn)(struct result *r, struct sec_ctx *c);

/*
 * The attack primitives: one hostile use of the device each.  The core's case
 * table (probe_cases.c) names the primitive a case runs; an OS fills in the
 * ones it has and leaves the others NULL, and a case whose primitive is NULL
 * is reported as skipped.
 */
struct os_attacks {
	/* both OSes, in each OS's own terms */
	case_fn unprivileged_open;	/* open as an unprivileged identity */
	case_fn write_through_mapping;	/* store through the read-only view */
	case_fn close_while_mapped;	/* use a mapping across closes */
	case_fn reads_pending_then_killed;	/* kill a process with reads pending */
	case_fn bad_ioctls;
	case_fn short_read;		/* read with a buffer < one record */
	/* Linux */
	case_fn proc_fd_reopen;		/* reopen an inherited fd via /proc/self/fd */
	case_fn pidfd_getfd;		/* take another process's fd */
	case_fn scm_rights;		/* pass the fd over a unix socket */
	case_fn fork_exec;		/* fork, parent exit, exec */
	case_fn mprotect_write;
	case_fn proc_self_mem;		/* /proc/self/mem, process_vm_writev */
	case_fn map_private;
	case_fn map_prot_write;
	case_fn map_offset_range;
	case_fn map_length_overflow;
	case_fn mremap_grow;
	case_fn many_threads;		/* open/map/read/close races */
	case_fn ring_write;		/* store through the event ring's view */
	case_fn ring_fork;		/* the ring mapping across fork */
	case_fn ring_passed;		/* the ring's fd passed to another process */
	case_fn ring_bad_setup;		/* bad ring set-ups, maps and releases */
	/* Windows */
	case_fn duplicate_handle;	/* DuplicateHandle into a child */
	case_fn inherit_handle;		/* handle inheritance by a child */
	case_fn process_exit_mapped;	/* a process exits with a mapping, reads */
	case_fn virtualprotect_write;
	case_fn write_process_memory;
	case_fn cancel_storm;		/* CancelIoEx on many pending reads */
};

extern const struct os_attacks os_attacks;

/* --- hot-unplug in two steps (guest-driver/INTERFACE.md) --- */

/* Starts the detached holder that waits for the removal and writes the
   state files; false when it could not (r says why).  note[0], note[1]: an
   extra detail (key, value) for the unplug-prepare result, or NULL. */
bool os_holder_start(struct result *r, struct sec_ctx *c, const char *note[2]);
/* unplug-check: judges the holder's result line (res) and last status. */
void os_unplug_judge(struct result *rm, struct result *rr, const char *res, const char *status);
/* unplug-check: details added to unplug-while-mapped after the verdict */
void os_unplug_finish(struct result *rm);
/* replaces path with tmp (the state files) */
bool os_replace_file(const char *tmp, const char *path);
void os_mkdir(const char *path);

/* ------------------------------------------------------------------ */
/* the core, for the OS files                                          */

extern char g_state_dir[260];

/* open + INFO, the failure said in r; OS_NO_HANDLE then */
os_handle open_checked(struct result *r, unsigned int flags, struct hilbox_info *in);
/* the unplug state files: STATE_DIR/name */
void state_write(const char *name, const char *text);
bool state_read(const char *name, char *buf, size_t cap);

/* probe_cases.c, for probe_main.c: exit status 0 or 2 */
int core_security(const char *which, bool list, int max_wait_s);
int core_write_mapping(void);
/* probe_consume.c: fb-consume; exit status 0 or 2 */
int core_fb_consume(const struct probe_opts *o);

#endif /* HILBOX_PROBE_OS_H */
