// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * probe_cases.c - the security cases: the table, the runner, `security --list`
 * and the two hot-unplug steps.
 *
 * A row is one case as one OS reports it: its name, the OS, the attack
 * primitive of struct os_attacks that runs it, what the device must offer, and
 * the policy it checks.  A name both OSes report has one row per OS (the
 * policy is in each OS's own terms).  Each OS lists and runs (`--case all`)
 * its rows in table order; `--case NAME` finds a case by name, and a case of
 * the other OS, or one whose primitive the OS lacks, is reported as skipped.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe_core.h"
#include "probe_os.h"

char g_state_dir[260];

/* what the device must offer, else the case is skipped */
#define NEED_EVENTS	0x1u	/* an event generator (mouse-rate-hz > 0) */

#define L OS_LINUX
#define W OS_WINDOWS
#define ATTACK(m) offsetof(struct os_attacks, m), #m

struct sec_case {
	const char *name;
	unsigned int os;	/* the OS that reports this row */
	size_t attack;		/* offset of its primitive in struct os_attacks */
	const char *prim;	/* the primitive's name */
	unsigned int needs;	/* NEED_* */
	const char *policy;
};

static const struct sec_case sec_cases[] = {
	{ "unprivileged-open", L, ATTACK(unprivileged_open), 0,
	  "The device node is root-only (0600): an unprivileged process cannot open it read-only or read-write." },
	{ "unprivileged-open", W, ATTACK(unprivileged_open), 0,
	  "The device object is for administrators and SYSTEM only: a standard-user token (Administrators deny-only, medium integrity) cannot open it for read or read-write." },
	{ "proc-fd-reopen", L, ATTACK(proc_fd_reopen), 0,
	  "A descriptor inherited by an unprivileged process cannot be reopened or upgraded through /proc/self/fd: the node's permissions are checked again." },
	{ "pidfd-getfd-unprivileged", L, ATTACK(pidfd_getfd), 0,
	  "An unprivileged process cannot take a root process's device descriptor with pidfd_getfd (ptrace access check)." },
	{ "scm-rights-map", L, ATTACK(scm_rights), 0,
	  "A descriptor passed with SCM_RIGHTS is a capability for exactly what was opened: the unprivileged receiver can map the framebuffer read-only, never writable or private." },
	{ "duplicate-handle-map", W, ATTACK(duplicate_handle), 0,
	  "A handle duplicated into another process (DuplicateHandle) is a capability for exactly what was opened: the receiver can map the framebuffer read-only, never writable." },
	{ "fork-exec-inherit", L, ATTACK(fork_exec), 0,
	  "fork() passes the mapping on as the same read-only shared mapping, which stays valid after the parent exits; exec drops mappings and O_CLOEXEC descriptors." },
	{ "inherit-handle-map", W, ATTACK(inherit_handle), 0,
	  "An inherited handle gives the child the same read-only access: it can map and read, a write through its mapping faults and VirtualProtect cannot make it writable." },
	{ "close-while-mapped", W, ATTACK(close_while_mapped), 0,
	  "Closing one handle while a duplicate holds the file object keeps the mapping and the file usable; the last close revokes any mapping left (IRP_MJ_CLEANUP), without a crash." },
	{ "process-exit-mapped", W, ATTACK(process_exit_mapped), 0,
	  "A process that exits with a live mapping and pending reads exits promptly; the driver unmaps and cancels on its behalf and the device keeps working (no PROCESS_HAS_LOCKED_PAGES bugcheck)." },
	{ "write-through-mapping", L, ATTACK(write_through_mapping), 0,
	  "The framebuffer mapping is read-only: a write through it kills the writer with SIGSEGV/SIGBUS and never reaches the device." },
	{ "write-through-mapping", W, ATTACK(write_through_mapping), 0,
	  "The framebuffer mapping is read-only: a write through it raises an access violation in the writer and never reaches the device." },
	{ "mprotect-write", L, ATTACK(mprotect_write), 0,
	  "A read-only mapping cannot be made writable or executable with mprotect (VM_MAYWRITE/VM_MAYEXEC cleared), whatever the open mode." },
	{ "virtualprotect-write", W, ATTACK(virtualprotect_write), 0,
	  "A read-only mapping cannot be made writable, copy-on-write or executable with VirtualProtect." },
	{ "proc-self-mem-write", L, ATTACK(proc_self_mem), 0,
	  "/proc/self/mem and process_vm_writev cannot write through the mapping (no FOLL_FORCE path into device memory)." },
	{ "write-process-memory", W, ATTACK(write_process_memory), 0,
	  "WriteProcessMemory cannot write through the mapping (it cannot lift the protection of the driver's view)." },
	{ "map-private", L, ATTACK(map_private), 0,
	  "MAP_PRIVATE mappings are refused with EINVAL (no copy-on-write of device memory)." },
	{ "map-prot-write", L, ATTACK(map_prot_write), 0,
	  "PROT_WRITE/PROT_EXEC mappings are refused: EACCES from the VFS for O_RDONLY descriptors, EPERM from the driver for O_RDWR descriptors." },
	{ "offset-out-of-range", L, ATTACK(map_offset_range), 0,
	  "Mappings must lie inside BAR2: offsets at or past its end, or ranges crossing it, are refused with EINVAL." },
	{ "length-overflow", L, ATTACK(map_length_overflow), 0,
	  "Lengths larger than BAR2 and offset+length overflows are refused without mapping anything." },
	{ "mremap-grow", L, ATTACK(mremap_grow), 0,
	  "A mapping cannot be grown with mremap (VM_DONTEXPAND); moving it keeps the same pages." },
	{ "close-while-mapped", L, ATTACK(close_while_mapped), 0,
	  "Closing the descriptor keeps an existing mapping valid (the mapping holds the file); no use-after-free." },
	{ "cancelioex-storm", W, ATTACK(cancel_storm), 0,
	  "Pending overlapped reads cancelled with CancelIoEx (all at once or one by one, repeatedly) complete promptly with ERROR_OPERATION_ABORTED and leave nothing queued." },
	{ "reads-pending-then-killed", L, ATTACK(reads_pending_then_killed), 0,
	  "Killing a process with blocking and io_uring reads pending cancels them promptly, leaves no queued request behind and the device keeps working." },
	{ "reads-pending-then-killed", W, ATTACK(reads_pending_then_killed), 0,
	  "Killing a process with overlapped reads pending cancels them promptly: the process exits, no queued request is left behind and the device keeps working." },
	{ "many-threads-map-read-close", L, ATTACK(many_threads), 0,
	  "Concurrent open/mmap/read/ioctl/close from many threads, including a descriptor replaced under a user, completes in bounded time without errors." },
	{ "bad-ioctls", L, ATTACK(bad_ioctls), 0,
	  "Unknown ioctls fail with ENOTTY, known numbers with a wrong size/direction or bad arguments with EINVAL, bad pointers with EFAULT; nothing crashes." },
	{ "bad-ioctls", W, ATTACK(bad_ioctls), 0,
	  "Unknown IOCTL codes fail with ERROR_INVALID_FUNCTION, known codes with short buffers, bad flags or bad pointers fail cleanly; nothing crashes and the device keeps answering." },
	{ "ring-write-through-mapping", L, ATTACK(ring_write), 0,
	  "The shared-memory event ring is mapped read-only: a write through it kills the writer with SIGSEGV, mprotect cannot make it writable or executable, PROT_WRITE and MAP_PRIVATE maps are refused, mremap cannot grow it, /proc/self/mem and process_vm_writev cannot write it, and its header stays as the driver wrote it." },
	{ "ring-write-through-mapping", W, ATTACK(ring_write), 0,
	  "The shared-memory event ring's view is read-only: a write through it raises an access violation, VirtualProtect cannot make it writable and WriteProcessMemory cannot write it; its header stays as the driver wrote it." },
	{ "ring-bad-setup", W, ATTACK(ring_bad_setup), 0,
	  "Ring set-ups with a size that is not a power of two in 64..65536, unknown flags or a handle that is not an event fail with ERROR_INVALID_PARAMETER; a release before set-up, past the tail or with a timeout is refused, and a second ring on the device fails with ERROR_BUSY." },
	{ "ring-fork", L, ATTACK(ring_fork), 0,
	  "A forked child inherits the ring as the same read-only mapping: it reads the driver's header, cannot attach a second ring (EBUSY) and a write through its mapping faults; the parent's ring keeps delivering whole records in sequence order." },
	{ "ring-passed-handle", L, ATTACK(ring_passed), 0,
	  "A descriptor with a ring passed with SCM_RIGHTS to an unprivileged process lets it map the ring read-only, never writable; a short mapping and a release past the tail are refused (EINVAL); the header stays intact." },
	{ "ring-bad-setup", L, ATTACK(ring_bad_setup), 0,
	  "Ring set-ups with a size that is not a power of two in 64..65536, unknown flags, reserved fields or a bad pointer fail with EINVAL/EFAULT; a map before set-up, of another length or offset, a second ring (EBUSY), a release backwards and bad wait arguments are refused." },
	{ "short-read-buffer", L, ATTACK(short_read), NEED_EVENTS,
	  "read() with a buffer smaller than one record fails with EINVAL and consumes nothing: the next full read returns the next record." },
	{ "short-read-buffer", W, ATTACK(short_read), 0,
	  "ReadFile with a buffer smaller than one record fails at once instead of pending or returning a partial record." },
};

#define N_CASES (sizeof(sec_cases) / sizeof(sec_cases[0]))

/* The row this OS reports under that name, else another OS's row, else NULL. */
static const struct sec_case *find_case(const char *name)
{
	const struct sec_case *other = NULL;
	size_t i;

	for (i = 0; i < N_CASES; i++) {
		if (strcmp(sec_cases[i].name, name))
			continue;
		if (sec_cases[i].os == os_desc.id)
			return &sec_cases[i];
		if (!other)
			other = &sec_cases[i];
	}
	return other;
}

static case_fn case_attack(const struct sec_case *sc)
{
	return *(const case_fn *)((const char *)&os_attacks + sc->attack);
}

/*
 * One result: open the device, check what the case needs, run it.
 * privileged: the case needs the rights of root / an administrator.
 */
static void run_case(const char *name, const char *policy, case_fn fn, unsigned int needs,
		     bool privileged, int max_wait_s)
{
	struct sec_ctx c;
	struct result r;
	const char *why;

	r_init(&r, "security", name, policy);
	memset(&c, 0, sizeof(c));
	c.max_wait_s = max_wait_s;
	c.h = open_checked(&r, 0, &c.in);
	if (c.h != OS_NO_HANDLE) {
		if (privileged && (why = os_privilege_problem()))
			r_skip(&r, "%s", why);
		else if ((needs & NEED_EVENTS) && !c.in.ev_rate_hz)
			r_skip(&r, "device has no event generator (mouse-rate-hz=0)");
		else
			fn(&r, &c);
		os_close(c.h);
	}
	r_emit(&r);
}

static void run_row(const struct sec_case *sc)
{
	case_fn fn = case_attack(sc);
	struct result r;

	if (sc->os == os_desc.id && fn) {
		run_case(sc->name, sc->policy, fn, sc->needs, true, 0);
		return;
	}
	r_init(&r, "security", sc->name, NULL);
	if (sc->os != os_desc.id)
		r_skip(&r, "a %s case: %s has no %s primitive",
		       sc->os == OS_LINUX ? "Linux" : "Windows", os_desc.name, sc->prim);
	else
		r_skip(&r, "%s has no %s primitive", os_desc.name, sc->prim);
	r_emit(&r);
}

int core_write_mapping(void)
{
	const struct sec_case *sc = find_case("write-through-mapping");

	run_case("write-mapping", sc->policy, case_attack(sc), 0, false, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* hot-unplug: unplug-prepare (a holder), the host removes the device, */
/* unplug-check                                                        */

static void state_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s%c%s", g_state_dir, os_desc.path_sep, name);
}

void state_write(const char *name, const char *text)
{
	char path[600], tmp[608];
	FILE *f;

	state_path(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	os_replace_file(tmp, path);
}

/* the file's text up to its first line end; false when it does not exist */
bool state_read(const char *name, char *buf, size_t cap)
{
	char path[600];
	size_t n;
	FILE *f;

	state_path(path, sizeof(path), name);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
	buf[strcspn(buf, "\r\n")] = 0;
	return true;
}

static void state_remove(const char *name)
{
	char path[600];

	state_path(path, sizeof(path), name);
	remove(path);
}

static void unplug_prepare(struct result *r, struct sec_ctx *c)
{
	uint64_t deadline = now_ns() + 15000000000ull;
	const char *note[2] = { NULL, NULL };
	char buf[128] = "";

	os_mkdir(g_state_dir);
	state_remove("status");
	state_remove("result");
	if (!os_holder_start(r, c, note))
		return;
	while (now_ns() < deadline) {
		if (state_read("status", buf, sizeof(buf)) &&
		    (!strncmp(buf, "ready", 5) || !strncmp(buf, "error", 5)))
			break;
		os_sleep_ms(50);
	}
	r_dstr(r, "state_dir", g_state_dir);
	r_dstr(r, "status", buf);
	if (note[0])
		r_dstr(r, note[0], note[1]);
	if (strncmp(buf, "ready", 5))
		r_fail(r, "background holder not ready: %s", buf[0] ? buf : "no status");
	else
		r_dnum(r, "holder_pid", atoi(buf + 6));
}

static int unplug_check(int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char res[4096] = "", status[64] = "";
	struct result rm, rr;

	r_init(&rm, "security", "unplug-while-mapped", os_desc.unplug_mapped_policy);
	r_init(&rr, "security", "unplug-reads-pending", os_desc.unplug_reads_policy);
	while (now_ns() < deadline && !state_read("result", res, sizeof(res)))
		os_sleep_ms(100);
	/* wait for the holder's last close */
	while (res[0] && now_ns() < deadline) {
		if (state_read("status", status, sizeof(status)) && !strncmp(status, "closed", 6))
			break;
		os_sleep_ms(100);
	}
	if (!res[0]) {
		r_fail(&rm, "no result from the holder in %d ms %s", timeout_ms, os_desc.unplug_no_result);
		r_fail(&rr, "no result from the holder in %d ms %s", timeout_ms, os_desc.unplug_no_result);
	} else if (strstr(res, "\"timeout\":true")) {
		r_fail(&rm, "the holder gave up waiting for the removal");
		r_fail(&rr, "the holder gave up waiting for the removal");
	} else {
		r_draw(&rm, "holder", res);
		r_draw(&rr, "holder", res);
		os_unplug_judge(&rm, &rr, res, status);
	}
	os_unplug_finish(&rm);
	r_emit(&rm);
	r_emit(&rr);
	return 0;
}

/* ------------------------------------------------------------------ */
/* security --list | --case NAME|all                                   */

int core_security(const char *which, bool list, int max_wait_s)
{
	const struct sec_case *sc;
	size_t i;

	if (list) {
		static struct case_list cl;

		cl_begin(&cl, "security");
		for (i = 0; i < N_CASES; i++)
			if (sec_cases[i].os == os_desc.id)
				cl_add(&cl, sec_cases[i].name, sec_cases[i].policy, false);
		cl_add(&cl, "unplug-prepare", NULL, true);
		cl_add(&cl, "unplug-check", NULL, true);
		cl_print(&cl);
		return 0;
	}
	if (!strcmp(which, "unplug-check"))
		return unplug_check(max_wait_s * 1000);
	if (!strcmp(which, "unplug-prepare")) {
		run_case("unplug-prepare", os_desc.unplug_prepare_policy, unplug_prepare, 0, true,
			 max_wait_s);
		return 0;
	}
	if (!strcmp(which, "all")) {
		for (i = 0; i < N_CASES; i++)
			if (sec_cases[i].os == os_desc.id)
				run_row(&sec_cases[i]);
		return 0;
	}
	sc = find_case(which);
	if (!sc) {
		dbg("unknown security case '%s' (try --list)", which);
		return 2;
	}
	run_row(sc);
	return 0;
}
