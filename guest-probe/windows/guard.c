// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * guard.c - guarded memory access for the Windows probe: a load or store that
 * faults (access violation, in-page error) becomes a return value instead of
 * killing the probe, the way a forked child's SIGSEGV does on Linux.
 */
#include "probe_windows.h"

/*
 * Two leaf functions with a single memory instruction each.  The vectored exception handler
 * recognises a fault at exactly these instructions, records it and resumes after the
 * instruction; any other exception is not ours and continues the search (and crashes the
 * probe, as it should).
 */
__asm__(".text\n"
	".globl probe_write_byte\n"
	"probe_write_byte:\n"		/* void probe_write_byte(volatile uint8_t *p, uint8_t v) */
	"	movb %dl, (%rcx)\n"
	".globl probe_write_byte_end\n"
	"probe_write_byte_end:\n"
	"	ret\n"
	".globl probe_read_byte\n"
	"probe_read_byte:\n"		/* uint8_t probe_read_byte(const volatile uint8_t *p) */
	"	movzbl (%rcx), %eax\n"
	".globl probe_read_byte_end\n"
	"probe_read_byte_end:\n"
	"	ret\n");

void probe_write_byte(volatile uint8_t *p, uint8_t v);
uint8_t probe_read_byte(const volatile uint8_t *p);
extern const char probe_write_byte_end[], probe_read_byte_end[];

static volatile DWORD t_fault;	/* exception code of the last guarded fault (one thread touches at a time) */

static LONG CALLBACK guard_handler(EXCEPTION_POINTERS *ep)
{
	DWORD code = ep->ExceptionRecord->ExceptionCode;
	CONTEXT *ctx = ep->ContextRecord;

	if (code != EXCEPTION_ACCESS_VIOLATION && code != EXCEPTION_IN_PAGE_ERROR)
		return EXCEPTION_CONTINUE_SEARCH;
	if (ctx->Rip == (DWORD64)(uintptr_t)probe_write_byte) {
		ctx->Rip = (DWORD64)(uintptr_t)probe_write_byte_end;
	} else if (ctx->Rip == (DWORD64)(uintptr_t)probe_read_byte) {
		ctx->Rip = (DWORD64)(uintptr_t)probe_read_byte_end;
		ctx->Rax = 0;
	} else {
		return EXCEPTION_CONTINUE_SEARCH;
	}
	t_fault = code;
	return EXCEPTION_CONTINUE_EXECUTION;
}

const char *fault_name(DWORD code)
{
	switch (code) {
	case 0: return "none";
	case EXCEPTION_ACCESS_VIOLATION: return "ACCESS_VIOLATION";
	case EXCEPTION_IN_PAGE_ERROR: return "IN_PAGE_ERROR";
	default: return "other";
	}
}

DWORD touch(const volatile uint8_t *p, bool write, uint8_t *value)
{
	uint8_t v;

	t_fault = 0;
	if (write) {
		probe_write_byte((volatile uint8_t *)p, 0x5a);
	} else {
		v = probe_read_byte(p);
		if (value)
			*value = v;
	}
	return t_fault;
}

void guard_init(void)
{
	AddVectoredExceptionHandler(1, guard_handler);
}
