// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * mapping.c - the Linux attack primitives on the framebuffer mapping: a write
 * through it, mprotect, /proc/self/mem and process_vm_writev, mmap with bad
 * flags, offsets and lengths, mremap, and closing the fd under the mapping.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "probe_linux.h"

/* --- write-through-mapping / write-mapping --- */

void sec_write_through(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t before[16];
	int sig;

	p = map_fb(CFD(c), &c->in);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	memcpy(before, p, sizeof(before));
	dev_stats(CFD(c), &s0);
	sig = touch_in_child(p, true);
	dev_stats(CFD(c), &s1);
	r_dstr(r, "child_signal", signame(sig));
	r_metric(r, "fb_write_attempts_delta",
		 (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (sig != SIGSEGV && sig != SIGBUS)
		r_fail(r, "writing child was not killed by SIGSEGV/SIGBUS (%s)",
		       signame(sig));
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device (FB_WRITE_ATTEMPTS +%llu)",
		       (unsigned long long)(s1.fb_write_attempts -
					    s0.fb_write_attempts));
	/* reading still works in the parent */
	sig = touch_in_child(p, false);
	if (sig)
		r_fail(r, "reading the mapping in a child died with %s",
		       signame(sig));
	munmap((void *)p, c->in.bar2_size);
}

/* --- mprotect-write --- */

void sec_mprotect(struct result *r, struct sec_ctx *c)
{
	int fds[2] = { CFD(c), -1 }, i;
	const char *names[2] = { "rdonly", "rdwr" };
	char key[64];

	fds[1] = dev_open(O_RDWR);
	for (i = 0; i < 2; i++) {
		void *p;

		if (fds[i] < 0) {
			r_fail(r, "open O_RDWR: %s", strerror(-fds[i]));
			continue;
		}
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED) {
			r_fail(r, "mmap(%s): %s", names[i], strerror(errno));
			continue;
		}
		snprintf(key, sizeof(key), "%s_mprotect_write", names[i]);
		if (!mprotect(p, 4096, PROT_READ | PROT_WRITE)) {
			r_dstr(r, key, "OK");
			r_fail(r, "mprotect(PROT_WRITE) succeeded on %s fd", names[i]);
		} else {
			r_dstr(r, key, errname(errno));
			if (errno != EACCES)
				r_fail(r, "mprotect(PROT_WRITE): %s, expected EACCES",
				       errname(errno));
		}
		snprintf(key, sizeof(key), "%s_mprotect_exec", names[i]);
		if (!mprotect(p, 4096, PROT_READ | PROT_EXEC)) {
			r_dstr(r, key, "OK");
			r_fail(r, "mprotect(PROT_EXEC) succeeded on %s fd", names[i]);
		} else {
			r_dstr(r, key, errname(errno));
		}
		munmap(p, 4096);
	}
	if (fds[1] >= 0)
		close(fds[1]);
}

/* --- proc-self-mem-write --- */

void sec_proc_mem(struct result *r, struct sec_ctx *c)
{
	struct hilbox_stats s0, s1;
	const uint8_t *p;
	uint8_t v = 0x5a, rd;
	struct iovec lio, rio;
	ssize_t n;
	int mfd;

	p = map_fb(CFD(c), &c->in);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	(void)*(const volatile uint8_t *)p;	/* populate */
	dev_stats(CFD(c), &s0);
	mfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mfd < 0) {
		r_skip(r, "open /proc/self/mem: %s", strerror(errno));
		goto out;
	}
	n = pwrite(mfd, &v, 1, (off_t)(uintptr_t)p);
	r_dstr(r, "proc_mem_write", n == 1 ? "OK" : errname(errno));
	if (n == 1)
		r_fail(r, "write through /proc/self/mem succeeded");
	n = pread(mfd, &rd, 1, (off_t)(uintptr_t)p);
	r_dstr(r, "proc_mem_read", n == 1 ? "OK" : errname(errno));
	close(mfd);
	lio.iov_base = &v;
	lio.iov_len = 1;
	rio.iov_base = (void *)p;
	rio.iov_len = 1;
	n = process_vm_writev(getpid(), &lio, 1, &rio, 1, 0);
	r_dstr(r, "process_vm_writev", n == 1 ? "OK" : errname(errno));
	if (n == 1)
		r_fail(r, "process_vm_writev into the mapping succeeded");
	dev_stats(CFD(c), &s1);
	r_metric(r, "fb_write_attempts_delta",
		 (double)(s1.fb_write_attempts - s0.fb_write_attempts), "writes");
	if (s1.fb_write_attempts != s0.fb_write_attempts)
		r_fail(r, "a write reached the device");
out:
	munmap((void *)p, c->in.bar2_size);
}

/* --- mmap argument checks --- */

static bool expect_map_fail(struct result *r, const char *what, int fd,
			    size_t len, int prot, int flags, off_t off,
			    int want_errno)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);
	int e = errno;

	r_dstr(r, what, p == MAP_FAILED ? errname(e) : "OK");
	if (p != MAP_FAILED) {
		munmap(p, len);
		r_fail(r, "%s: mmap succeeded", what);
		return false;
	}
	if (want_errno && e != want_errno) {
		r_fail(r, "%s: %s, expected %s", what, errname(e),
		       errname(want_errno));
		return false;
	}
	return true;
}

void sec_map_private(struct result *r, struct sec_ctx *c)
{
	expect_map_fail(r, "map_private_ro", CFD(c), 4096, PROT_READ,
			MAP_PRIVATE, 0, EINVAL);
}

void sec_map_prot_write(struct result *r, struct sec_ctx *c)
{
	int rw = dev_open(O_RDWR);

	/* O_RDONLY file: the VFS refuses before the driver sees it */
	expect_map_fail(r, "rdonly_prot_write", CFD(c), 4096,
			PROT_READ | PROT_WRITE, MAP_SHARED, 0, EACCES);
	if (rw < 0) {
		r_fail(r, "open O_RDWR: %s", strerror(-rw));
		return;
	}
	/* O_RDWR file: the driver refuses */
	expect_map_fail(r, "rdwr_prot_write", rw, 4096, PROT_READ | PROT_WRITE,
			MAP_SHARED, 0, EPERM);
	expect_map_fail(r, "rdwr_prot_write_only", rw, 4096, PROT_WRITE,
			MAP_SHARED, 0, EPERM);
	expect_map_fail(r, "rdonly_prot_exec", CFD(c), 4096,
			PROT_READ | PROT_EXEC, MAP_SHARED, 0, 0);
	close(rw);
}

void sec_offset_range(struct result *r, struct sec_ctx *c)
{
	off_t bar = (off_t)c->in.bar2_size;
	void *p;

	expect_map_fail(r, "offset_eq_bar2_size", CFD(c), 4096, PROT_READ,
			MAP_SHARED, bar, EINVAL);
	expect_map_fail(r, "last_page_plus_one", CFD(c), 8192, PROT_READ,
			MAP_SHARED, bar - 4096, EINVAL);
	expect_map_fail(r, "offset_1tib", CFD(c), 4096, PROT_READ, MAP_SHARED,
			(off_t)1 << 40, EINVAL);
	expect_map_fail(r, "offset_unaligned", CFD(c), 4096, PROT_READ,
			MAP_SHARED, 100, EINVAL);
	/* control: the last page itself is fine */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, CFD(c), bar - 4096);
	r_dstr(r, "last_page", p == MAP_FAILED ? errname(errno) : "OK");
	if (p == MAP_FAILED)
		r_fail(r, "mapping the last page of BAR2 failed: %s",
		       strerror(errno));
	else if (touch_in_child(p, false))
		r_fail(r, "reading the last page died");
	if (p != MAP_FAILED)
		munmap(p, 4096);
}

void sec_length_overflow(struct result *r, struct sec_ctx *c)
{
	size_t bar = (size_t)c->in.bar2_size;

	expect_map_fail(r, "len_bar2_plus_page", CFD(c), bar + 4096, PROT_READ,
			MAP_SHARED, 0, EINVAL);
	expect_map_fail(r, "len_2x_bar2", CFD(c), bar * 2, PROT_READ, MAP_SHARED,
			0, EINVAL);
	expect_map_fail(r, "len_128tib", CFD(c), (size_t)1 << 47, PROT_READ,
			MAP_SHARED, 0, 0);
	/* page offset + length wrap around */
	expect_map_fail(r, "offset_near_wrap", CFD(c), 8192, PROT_READ,
			MAP_SHARED, (off_t)(((uint64_t)1 << 63) - 4096), 0);
	expect_map_fail(r, "offset_negative", CFD(c), 8192, PROT_READ,
			MAP_SHARED, (off_t)-4096, 0);
	expect_map_fail(r, "len_max", CFD(c), SIZE_MAX & ~(size_t)4095,
			PROT_READ, MAP_SHARED, 4096, 0);
}

void sec_mremap_grow(struct result *r, struct sec_ctx *c)
{
	const uint8_t *p, *q;
	uint8_t a, b;

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, CFD(c), 0);
	if (p == MAP_FAILED) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	q = mremap((void *)p, 4096, 8192, MREMAP_MAYMOVE);
	r_dstr(r, "grow_maymove", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		r_fail(r, "mremap grew the mapping");
		p = q;
	}
	q = mremap((void *)p, 4096, 8192, 0);
	r_dstr(r, "grow_in_place", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		r_fail(r, "mremap grew the mapping in place");
		p = q;
	}
	/* moving (same size) is harmless: the pages stay the same */
	a = *(const volatile uint8_t *)p;
	q = mremap((void *)p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (void *)(((uintptr_t)p) + ((uintptr_t)1 << 30)));
	r_dstr(r, "move_same_size", q == MAP_FAILED ? errname(errno) : "OK");
	if (q != MAP_FAILED) {
		p = q;
		if (touch_in_child(p, false))
			r_fail(r, "moved mapping unreadable");
		b = *(const volatile uint8_t *)p;
		r_dnum(r, "byte_before_move", a);
		r_dnum(r, "byte_after_move", b);
	}
	munmap((void *)p, 4096);
}

void sec_close_while_mapped(struct result *r, struct sec_ctx *c)
{
	struct verify_res v;
	struct hilbox_info in;
	uint8_t *buf;
	const uint8_t *p;
	uint32_t n16;
	int fd = dev_open(O_RDONLY), tries;

	if (fd < 0) {
		r_fail(r, "open: %s", strerror(-fd));
		return;
	}
	in = c->in;
	p = map_fb(fd, &in);
	close(fd);
	if (!p) {
		r_fail(r, "mmap: %s", strerror(errno));
		return;
	}
	buf = malloc(in.fb_bytes);
	if (!buf) {
		r_fail(r, "out of memory");
		goto out;
	}
	if (touch_in_child(p + in.fb_bytes - 1, false)) {
		r_fail(r, "mapping unreadable after close");
		goto out;
	}
	for (tries = 0; tries < 50; tries++) {
		memcpy(buf, p, in.fb_bytes);
		if (frame_consistent(buf, &in, &n16))
			break;
	}
	r_dnum(r, "frame16", n16);
	if (tries == 50) {
		r_fail(r, "no consistent frame read after close");
	} else {
		/* full check against the decoded number (mod 65536) */
		verify_frame(buf, &in, n16, &v);
		r_metric(r, "mismatched_pixels", (double)v.bad_px, "px");
		if (v.bad_px && v.bad_px == v.other_px)
			r_dstr(r, "note", "frame changed during the read");
		else if (v.bad_px)
			r_fail(r, "garbage pixels read after close");
	}
	fd = dev_open(O_RDONLY);
	if (fd < 0)
		r_fail(r, "reopen failed: %s", strerror(-fd));
	else
		close(fd);
out:
	free(buf);
	munmap((void *)p, in.bar2_size);
}
