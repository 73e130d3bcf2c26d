// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * child.c - the Windows probe's child processes: the probe starts itself again
 * with a hidden `_child` command (use a handle it was given, exit holding a
 * mapping and pending reads, pend reads and wait), talking over its stdin and
 * stdout; and overlapped reads left pending.
 */
#include "probe_windows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DWORD child_start(struct child *c, const char *args, DWORD flags)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, TRUE };
	HANDLE in_r = NULL, out_w = NULL;
	STARTUPINFOA si;
	char cmd[2048];
	DWORD e = 0;

	memset(c, 0, sizeof(*c));
	if (!CreatePipe(&in_r, &c->in_w, &sa, 0) || !CreatePipe(&c->out_r, &out_w, &sa, 0))
		return GetLastError();
	SetHandleInformation(c->in_w, HANDLE_FLAG_INHERIT, 0);
	SetHandleInformation(c->out_r, HANDLE_FLAG_INHERIT, 0);
	snprintf(cmd, sizeof(cmd), "\"%s\" --dev %s %s", g_self, g_dev, args);
	memset(&si, 0, sizeof(si));
	si.cb = sizeof(si);
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdInput = in_r;
	si.hStdOutput = out_w;
	si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
	if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, flags, NULL, NULL, &si, &c->pi))
		e = GetLastError();
	CloseHandle(in_r);
	CloseHandle(out_w);
	return e;
}

DWORD child_finish(struct child *c, char *out, size_t cap, DWORD timeout_ms, DWORD *exit_code)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t len = 0;
	DWORD avail, n, wait = WAIT_TIMEOUT;

	out[0] = 0;
	CloseHandle(c->in_w);
	c->in_w = NULL;
	for (;;) {
		while (PeekNamedPipe(c->out_r, NULL, 0, NULL, &avail, NULL) && avail && len + 1 < cap) {
			if (!ReadFile(c->out_r, out + len, (DWORD)(cap - 1 - len < avail ? cap - 1 - len : avail), &n, NULL))
				break;
			len += n;
			out[len] = 0;
		}
		if (wait == WAIT_OBJECT_0)
			break;
		wait = WaitForSingleObject(c->pi.hProcess, 20);
		if (wait != WAIT_OBJECT_0 && now_ns() > deadline) {
			TerminateProcess(c->pi.hProcess, 0xdead);
			WaitForSingleObject(c->pi.hProcess, 5000);
			*exit_code = 0xdead;
			break;
		}
	}
	if (*exit_code != 0xdead)
		GetExitCodeProcess(c->pi.hProcess, exit_code);
	CloseHandle(c->out_r);
	CloseHandle(c->pi.hThread);
	CloseHandle(c->pi.hProcess);
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = 0;
	return wait == WAIT_OBJECT_0 ? 0 : WAIT_TIMEOUT;
}

bool child_wait_ready(struct child *c, DWORD timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	char buf[64];
	DWORD avail, n;
	size_t len = 0;

	while (now_ns() < deadline) {
		if (PeekNamedPipe(c->out_r, NULL, 0, NULL, &avail, NULL) && avail) {
			if (!ReadFile(c->out_r, buf + len, 1, &n, NULL))
				return false;
			len += n;
			buf[len] = 0;
			if (strstr(buf, "ready"))
				return true;
			if (len + 2 >= sizeof(buf))
				len = 0;
			continue;
		}
		if (WaitForSingleObject(c->pi.hProcess, 10) == WAIT_OBJECT_0)
			return false;
	}
	return false;
}

/* What a child does with a handle it got: info, map, read, write (must fault), reprotect. */
static int child_use_handle(HANDLE h)
{
	struct hilbox_info in;
	const uint8_t *p;
	DWORD e, f, old = 0;
	uint8_t v = 0;

	e = dev_info(h, &in);
	printf("info=%s ", errname(e));
	p = map_fb(h, &e);
	printf("map=%s ", errname(e));
	if (p) {
		f = touch(p, false, &v);
		printf("read=%s ", fault_name(f));
		f = touch(p, true, NULL);
		printf("write=%s ", fault_name(f));
		e = VirtualProtect((void *)p, 4096, PAGE_READWRITE, &old) ? 0 : GetLastError();
		printf("protect=%s ", errname(e));
		e = unmap_fb(h, p);
		printf("unmap=%s", errname(e));
	}
	printf("\n");
	fflush(stdout);
	return 0;
}

unsigned int pend_reads(HANDLE h, struct pend *p, unsigned int n, bool with_events)
{
	unsigned int i, ok = 0;

	for (i = 0; i < n; i++) {
		memset(&p[i].ov, 0, sizeof(p[i].ov));
		if (with_events)
			p[i].ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
		p[i].busy = ReadFile(h, &p[i].ev, EV_SZ, NULL, &p[i].ov) || GetLastError() == ERROR_IO_PENDING;
		ok += p[i].busy;
	}
	return ok;
}

/* _child use-handle [HANDLE] | exit-mapped | pend-and-wait */
int cmd_child(const char *what, int argc, char **argv)
{
	char line[64];
	DWORD e;
	HANDLE h;

	if (!strcmp(what, "use-handle")) {
		/* the handle value comes on the command line (inherited) or on stdin (duplicated) */
		if (argc > 0) {
			h = (HANDLE)(uintptr_t)strtoull(argv[0], NULL, 0);
		} else {
			if (!fgets(line, sizeof(line), stdin))
				return 3;
			h = (HANDLE)(uintptr_t)strtoull(line, NULL, 0);
		}
		return child_use_handle(h);
	}
	if (!strcmp(what, "exit-mapped") || !strcmp(what, "pend-and-wait")) {
		static struct pend p[16];
		struct hilbox_info in;
		const uint8_t *fb = NULL;
		uint8_t v;

		h = dev_open(true, &e);
		if (h == INVALID_HANDLE_VALUE || dev_info(h, &in)) {
			printf("error open %s\n", errname(e));
			return 3;
		}
		dev_set_events(h, 0, HILBOX_EVCTL_FLUSH);	/* unsubscribed: reads stay pending */
		if (!strcmp(what, "exit-mapped")) {
			fb = map_fb(h, &e);
			if (!fb) {
				printf("error map %s\n", errname(e));
				return 3;
			}
			touch(fb, false, &v);
		}
		printf("ready %u pending\n", pend_reads(h, p, 16, true));
		fflush(stdout);
		if (fb)
			ExitProcess(0);	/* mapping, handle and reads still live */
		Sleep(INFINITE);
	}
	dbg("unknown child command %s", what);
	return 2;
}
