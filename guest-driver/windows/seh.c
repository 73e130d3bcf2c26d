// SPDX-License-Identifier: MIT
/*
 * seh.c - one structured-exception guard for a compiler without __try.
 *
 * Two kernel routines report failure by *raising* an exception instead of
 * returning a status, and must be called inside __try/__except:
 *   - MmMapLockedPagesSpecifyCache(..., UserMode, ...) (zero-copy view),
 *   - MmProbeAndLockPages on a caller-supplied user address (COPY_FRAME).
 * MinGW-w64's GCC (Debian 12: GCC 12) does not implement __try/__except, and
 * mingw's <excpt.h> __try1/__except1 macros use fixed labels and swallow the
 * exception code.  So this file builds the one scope MSVC would have
 * emitted, by hand, with the documented x64 exception model:
 *
 *   - the function's unwind info (.pdata/.xdata, emitted by GCC) gets a
 *     language-specific handler, ntoskrnl's exported __C_specific_handler,
 *     with its documented handler data: a SCOPE_TABLE of one record
 *     { BeginAddress, EndAddress, HandlerAddress = 1 (EXCEPTION_EXECUTE_
 *     HANDLER, no filter function), JumpTarget } (all image-relative);
 *   - an exception raised anywhere below the call to Fn (inside Fn or the
 *     kernel routines it calls) is dispatched to __C_specific_handler, which
 *     finds the return address of the call inside [Begin, End), and calls
 *     RtlUnwindEx(frame, JumpTarget, record, ExceptionCode, ...): callee
 *     frames are unwound, non-volatile registers and RSP of this frame are
 *     restored from the unwind info, RAX = the exception code, and execution
 *     resumes at JumpTarget, which stores EAX as the result.
 *
 * Constraints that keep this correct, all checked by the build
 * (scripts/build-windows.mjs dumps the unwind info and asserts the handler):
 *   - exactly one guarded scope in this translation unit (fixed local
 *     labels), in a function that is never inlined or cloned;
 *   - no -ffunction-sections for this file (the asm returns to .text);
 *   - the result lives in a volatile stack slot, the only state the code
 *     after JumpTarget reads (volatile registers are garbage there);
 *   - a nop after the call keeps the call's return address strictly inside
 *     the scope (MSVC does the same).
 * Only exceptions raised at IRQL <= APC_LEVEL by the two routines above are
 * expected; access violations in kernel code are still bugs, not handled.
 */
#include "hilbox_drv.h"

__attribute__((noinline, noclone, used))
NTSTATUS HbCallGuarded(HB_GUARDED_FN Fn, PVOID Context)
{
	volatile NTSTATUS status = STATUS_UNSUCCESSFUL;

	__asm__ __volatile__(
		".seh_handler __C_specific_handler, @except\n\t"
		".seh_handlerdata\n\t"
		".long 1\n\t"			/* SCOPE_TABLE.Count */
		".rva .Lhb_guard_begin\n\t"	/* BeginAddress */
		".rva .Lhb_guard_end\n\t"	/* EndAddress */
		".long 1\n\t"			/* HandlerAddress: EXECUTE_HANDLER */
		".rva .Lhb_guard_except\n\t"	/* JumpTarget */
		".text\n"
		".Lhb_guard_begin:\n\t"
		::: "memory");
	status = Fn(Context);
	__asm__ __volatile__(
		"nop\n"
		".Lhb_guard_end:\n\t"
		"jmp .Lhb_guard_done\n"
		".Lhb_guard_except:\n\t"
		"movl %%eax, %0\n"
		".Lhb_guard_done:\n\t"
		: "+m"(status)
		:
		: "memory", "rax", "rcx", "rdx", "r8", "r9", "r10", "r11");
	return status;
}
