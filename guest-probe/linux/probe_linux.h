/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe_linux.h - what the Linux files of the probe share among themselves.
 *
 *   os.c        the device (ioctls), clocks, errors, the OS description, main's hooks
 *   fb.c        mmap of BAR2, the fb-throughput alarm
 *   events.c    raw io_uring, read(), the events-throughput modes
 *   proc.c      child processes: fork, dropping privileges, touching memory in a child
 *   security.c  the process and descriptor attacks, the attack table
 *   mapping.c   the attacks on the mapping (mprotect, /proc/self/mem, mmap args, mremap)
 *   ioctl.c     bad ioctls, short reads
 *   unplug.c    the hot-unplug holder and its verdict
 *   hardening.c hidden "_hb-*" commands of the driver-hardening tests
 */
#ifndef HILBOX_PROBE_LINUX_H
#define HILBOX_PROBE_LINUX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/io_uring.h>

#include "hilbox_uapi.h"
#include "probe_core.h"
#include "probe_os.h"

#define NOBODY_ID	65534
#define EV_SZ		((size_t)sizeof(struct hilbox_event))

/* the runner's descriptor as an fd */
#define CFD(c)		((int)(c)->h)

extern const char *g_self;

/* os.c: the ioctls; 0 or -errno */
const char *errname(int e);
void sleep_ms(unsigned int ms);
int dev_open(int flags);	/* O_CLOEXEC added; fd or -errno */
int dev_info(int fd, struct hilbox_info *in);
int dev_stats(int fd, struct hilbox_stats *st);
int dev_frame_state(int fd, struct hilbox_frame_state *fs);
int dev_clock(int fd, uint64_t *dev_ns);
int dev_set_events(int fd, unsigned int enable, unsigned int flags);
int dev_copy(int fd, void *buf, size_t len, unsigned int flags, unsigned int max_retries,
	     struct hilbox_copy_frame *cf);

/* fb.c */
const uint8_t *map_fb(int fd, const struct hilbox_info *in);	/* NULL, errno set */

/* events.c: raw io_uring */
struct uring {
	int fd;
	unsigned int sq_entries;
	unsigned int *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ptr, *cq_ptr;
	size_t sq_len, cq_len, sqes_len;
	unsigned int to_submit;
};

int uring_init(struct uring *u, unsigned int entries);
void uring_exit(struct uring *u);
int uring_queue_read(struct uring *u, int fd, void *buf, unsigned int len, uint64_t user_data,
		     uint8_t sqe_flags);
int uring_submit(struct uring *u);
/* up to max completions; waits up to timeout_ms for the first one */
int uring_reap(struct uring *u, struct io_uring_cqe *out, int max, int timeout_ms);

/* proc.c: a forked child reports through a pipe */
struct child_msg {
	int status;		/* 0 pass, 1 fail, 2 skip */
	char reason[400];
	char details[1200];
};

void cm_fail(struct child_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cm_detail(struct child_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int drop_privileges(void);
typedef void (*child_fn)(void *arg, struct child_msg *m);
/* Runs fn in a forked child (unpriv: as uid/gid 65534); 0 and *m, or -ETIMEDOUT / -ECHILD. */
int run_child(child_fn fn, void *arg, bool unpriv, int timeout_ms, struct child_msg *m,
	      int *wstatus);
void child_into(struct result *r, int ret, struct child_msg *m);
/* a child touches *p: the signal that stopped it, 0 = none */
int touch_in_child(const volatile uint8_t *p, bool write);
const char *signame(int sig);
int fd_send(int sock, int fd);	/* SCM_RIGHTS: 0 or -errno */
int fd_recv(int sock);		/* the descriptor, or -errno (-EBADMSG: none came) */

/* hardening.c: a hidden "_hb-*" command; its exit status, or -1 when cmd is none */
int hardening_command(const char *cmd, int argc, char **argv, int i);

/* security.c: the child the fork-exec case execs */
int cmd_exec_check(int fd1, int fd2, int out);

/* evring.c: the shared-memory event ring (INTERFACE.md 3b) */
struct evring {
	int fd;
	struct hilbox_ev_ring_hdr *hdr;
	const struct hilbox_ev_slot *slots;
	size_t bytes;
	uint64_t head;
	uint32_t mask;
};

/* EV_RING + mmap; 0 or -errno (nothing left behind) */
int evring_attach(int fd, unsigned int records, struct evring *er);
void evring_detach(struct evring *er);
/* release up to er->head and wait up to timeout_ms; 0 or -errno */
int evring_wait(struct evring *er, unsigned int timeout_ms);
enum ev_outcome ev_ring(struct ev_run *run);

/* notify.c: `notify-baseline` (eventfd write -> wake-up), exit status */
int cmd_notify_baseline(const struct probe_opts *o);

/* the attack primitives (struct os_attacks) by file */
void sec_unprivileged_open(struct result *r, struct sec_ctx *c);
void sec_proc_fd_reopen(struct result *r, struct sec_ctx *c);
void sec_pidfd_getfd(struct result *r, struct sec_ctx *c);
void sec_scm_rights(struct result *r, struct sec_ctx *c);
void sec_fork_exec(struct result *r, struct sec_ctx *c);
void sec_reads_killed(struct result *r, struct sec_ctx *c);
void sec_many_threads(struct result *r, struct sec_ctx *c);
void sec_write_through(struct result *r, struct sec_ctx *c);
void sec_mprotect(struct result *r, struct sec_ctx *c);
void sec_proc_mem(struct result *r, struct sec_ctx *c);
void sec_map_private(struct result *r, struct sec_ctx *c);
void sec_map_prot_write(struct result *r, struct sec_ctx *c);
void sec_offset_range(struct result *r, struct sec_ctx *c);
void sec_length_overflow(struct result *r, struct sec_ctx *c);
void sec_ring_write(struct result *r, struct sec_ctx *c);
void sec_ring_fork(struct result *r, struct sec_ctx *c);
void sec_ring_passed(struct result *r, struct sec_ctx *c);
void sec_ring_bad_setup(struct result *r, struct sec_ctx *c);
void sec_mremap_grow(struct result *r, struct sec_ctx *c);
void sec_close_while_mapped(struct result *r, struct sec_ctx *c);
void sec_bad_ioctls(struct result *r, struct sec_ctx *c);
void sec_short_read(struct result *r, struct sec_ctx *c);

#endif /* HILBOX_PROBE_LINUX_H */
