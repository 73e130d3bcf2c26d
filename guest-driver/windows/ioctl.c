// SPDX-License-Identifier: MIT
/*
 * ioctl.c - IRP_MJ_DEVICE_CONTROL of hilbox.sys.
 *
 * Same structs and semantics as the Linux ioctls (INTERFACE.md section 4);
 * codes in hilbox_ioctl.h.  Every code is METHOD_BUFFERED: the I/O manager
 * copies the caller's input into Irp->AssociatedIrp.SystemBuffer (nonpaged,
 * owned by the I/O manager, ours until completion) and copies
 * IoStatus.Information bytes of it back to the caller's output buffer on
 * success.  Sizes: an input or output buffer shorter than the struct ->
 * STATUS_BUFFER_TOO_SMALL; bad values -> STATUS_INVALID_PARAMETER; unknown
 * code -> STATUS_INVALID_DEVICE_REQUEST; removed device ->
 * STATUS_NO_SUCH_DEVICE.
 *
 * The dispatch routine runs in the caller's thread and process: hilbox.sys
 * is the top of its stack (no upper filter in hilbox.inf) and the I/O
 * manager calls the top driver directly from NtDeviceIoControlFile.  That is
 * the WDM counterpart of KMDF's EvtIoInCallerContext, and what COPY_FRAME
 * (locks the caller's buffer) and MAP_FB (maps into the caller) rely on;
 * both verify it (IoGetRequestorProcess(Irp) == PsGetCurrentProcess()).
 */
#include "hilbox_drv.h"

static BOOLEAN HbGone(PHB_DEVICE Dev)
{
	LONG s = InterlockedCompareExchange(&Dev->PnpState, 0, 0);

	return s == HbSurpriseRemoved || s == HbRemoved;
}

/* Output-only struct of Size bytes. */
static NTSTATUS HbOutBuffer(PIRP Irp, ULONG Size, PVOID *Out)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);

	if (sp->Parameters.DeviceIoControl.OutputBufferLength < Size)
		return STATUS_BUFFER_TOO_SMALL;
	*Out = Irp->AssociatedIrp.SystemBuffer;
	RtlZeroMemory(*Out, Size);
	Irp->IoStatus.Information = Size;
	return STATUS_SUCCESS;
}

static NTSTATUS HbIoctlInfo(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_info *info;
	NTSTATUS status;

	if (HbGone(Dev))
		return STATUS_NO_SUCH_DEVICE;
	status = HbOutBuffer(Irp, sizeof(*info), (PVOID *)&info);
	if (NT_SUCCESS(status))
		*info = Dev->Info;	/* fixed since START_DEVICE */
	return status;
}

static NTSTATUS HbIoctlStats(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_stats *st;
	NTSTATUS status;
	KIRQL irql;

	status = HbOutBuffer(Irp, sizeof(*st), (PVOID *)&st);
	if (!NT_SUCCESS(status))
		return status;
	if (!HbHwEnter(Dev)) {
		Irp->IoStatus.Information = 0;
		return HbHwGoneStatus(Dev);
	}
	st->frames_produced = HbRd64(Dev, HB_REG_FRAMES_PRODUCED);
	st->frame_number = HbRd64(Dev, HB_REG_FRAME_NUMBER);
	st->frame_timestamp = HbRd64(Dev, HB_REG_FRAME_TS);
	st->fb_write_attempts = HbRd64(Dev, HB_REG_FB_WRITES);
	st->ev_produced = HbRd64(Dev, HB_REG_EV_PRODUCED);
	st->ev_delivered = HbRd64(Dev, HB_REG_EV_DELIVERED);
	st->ev_dropped = HbRd64(Dev, HB_REG_EV_DROPPED);
	st->frame_seq = HbRd32(Dev, HB_REG_FRAME_SEQ);
	st->ev_count = HbRd32(Dev, HB_REG_EV_COUNT);
	st->feed_errors = HbRd32(Dev, HB_REG_FEED_ERRORS);
	HbHwExit(Dev);

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	st->drv_ev_received = Dev->EvReceived;
	st->drv_ev_read = Dev->EvRead;
	st->drv_ring_drops = Dev->RingDrops;
	st->drv_seq_gaps = Dev->SeqGaps;
	st->drv_flushed = Dev->Flushed;
	st->ring_level = Dev->RingCount;
	KeReleaseSpinLock(&Dev->DeliverLock, irql);

	KeAcquireSpinLock(&Dev->CsqLock, &irql);
	st->readers_waiting = Dev->PendingCount;
	KeReleaseSpinLock(&Dev->CsqLock, irql);

	st->irq_count = (ULONG64)InterlockedCompareExchange64(&Dev->IrqCount, 0, 0);
	st->irq_overflows = (ULONG64)InterlockedCompareExchange64(&Dev->IrqOverflows, 0, 0);
	st->link_downs = (ULONG64)InterlockedCompareExchange64(&Dev->LinkDowns, 0, 0);
	st->fallback_drains = (ULONG64)InterlockedCompareExchange64(&Dev->FallbackDrains, 0, 0);
	st->irq_storms = (ULONG64)InterlockedCompareExchange64(&Dev->IrqStorms, 0, 0);
	st->irq_spurious = (ULONG64)InterlockedCompareExchange64(&Dev->IrqSpurious, 0, 0);
	st->subscribers = *(volatile ULONG *)&Dev->Subscribers;
	return STATUS_SUCCESS;
}

static NTSTATUS HbIoctlClock(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_clock *clk;
	NTSTATUS status;

	status = HbOutBuffer(Irp, sizeof(*clk), (PVOID *)&clk);
	if (!NT_SUCCESS(status))
		return status;
	if (!HbHwEnter(Dev)) {
		Irp->IoStatus.Information = 0;
		return HbHwGoneStatus(Dev);
	}
	clk->device_ns = HbRd64(Dev, HB_REG_DEVICE_CLOCK);
	/* Windows' CLOCK_MONOTONIC: the QueryPerformanceCounter clock, in ns */
	clk->monotonic_ns = HbNowNs();
	HbHwExit(Dev);
	return STATUS_SUCCESS;
}

static NTSTATUS HbIoctlFrameState(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_frame_state *fs;
	NTSTATUS status;

	status = HbOutBuffer(Irp, sizeof(*fs), (PVOID *)&fs);
	if (!NT_SUCCESS(status))
		return status;
	if (!HbHwEnter(Dev)) {
		Irp->IoStatus.Information = 0;
		return HbHwGoneStatus(Dev);
	}
	fs->frame_seq = HbRd32(Dev, HB_REG_FRAME_SEQ);
	fs->frame_number = HbRd64(Dev, HB_REG_FRAME_NUMBER);
	fs->frame_timestamp = HbRd64(Dev, HB_REG_FRAME_TS);
	fs->device_ns = HbRd64(Dev, HB_REG_DEVICE_CLOCK);
	HbHwExit(Dev);
	return STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* COPY_FRAME                                                          */

typedef struct _HB_LOCK_CALL {
	PMDL Mdl;
	KPROCESSOR_MODE Mode;
} HB_LOCK_CALL;

/* Runs under HbCallGuarded: a bad user address raises. */
static NTSTATUS HbLockGuarded(PVOID Context)
{
	HB_LOCK_CALL *c = Context;

	MmProbeAndLockPages(c->Mdl, c->Mode, IoWriteAccess);
	return STATUS_SUCCESS;
}

static BOOLEAN HbShouldStop(PIRP Irp)
{
	/*
	 * CancelIoEx sets Irp->Cancel even without a cancel routine; the
	 * IRP's thread is the calling thread (caller's context).
	 */
	return Irp->Cancel || PsIsThreadTerminating(Irp->Tail.Overlay.Thread);
}

/*
 * BAR2 to the locked destination with the widest single accesses: every
 * access may trap to the device model (fb-mode=mmio, or TCG), so fewer and
 * wider accesses are what makes a copy fit into one frame period.
 */
static void HbCopyFromFb(PUCHAR Dst, volatile UCHAR *Src, SIZE_T Len)
{
	SIZE_T i, n = Len / sizeof(ULONG64);

	for (i = 0; i < n; i++) {
		ULONG64 v = ((volatile ULONG64 *)Src)[i];

		__builtin_memcpy(Dst + i * sizeof(ULONG64), &v, sizeof(v));
	}
	for (i = n * sizeof(ULONG64); i < Len; i++)
		Dst[i] = Src[i];
}

/*
 * Wait until FRAME_SEQ is even (and differs from Seq if WaitChange).  On
 * success HwLock is still held (shared).  Spins in 20 us steps for the first
 * millisecond, then sleeps (the sleep is rounded up to the timer resolution,
 * 0.5-15.6 ms: Windows has no usleep_range).
 */
static NTSTATUS HbWaitSeq(PHB_DEVICE Dev, PIRP Irp, ULONG Seq, BOOLEAN WaitChange,
			  ULONG64 Deadline, ULONG *Out)
{
	ULONG spins = 0;
	LARGE_INTEGER delay;

	for (;;) {
		if (!HbHwEnter(Dev))
			return HbHwGoneStatus(Dev);
		*Out = HbRd32(Dev, HB_REG_FRAME_SEQ);
		if (!(*Out & 1) && (!WaitChange || *Out != Seq))
			return STATUS_SUCCESS;
		HbHwExit(Dev);
		if (HbShouldStop(Irp))
			return STATUS_CANCELLED;
		if (HbNowNs() > Deadline)
			return STATUS_IO_TIMEOUT;
		if (spins < 50) {
			spins++;
			KeStallExecutionProcessor(20);
		} else {
			delay.QuadPart = -1000;	/* 100 us, relative */
			KeDelayExecutionThread(KernelMode, FALSE, &delay);
		}
	}
}

/* One attempt (Linux hb_copy_once): S1 before, S2 after the copy. */
static NTSTATUS HbCopyOnce(PHB_DEVICE Dev, PIRP Irp, struct hilbox_copy_frame *Cf,
			   PUCHAR Dst, BOOLEAN Seqlock, BOOLEAN WaitNext,
			   ULONG AfterSeq, ULONG *S1, ULONG *S2)
{
	ULONG64 period = 1000000000ULL / (Dev->Info.fps ? Dev->Info.fps : 1);
	ULONG64 deadline = HbNowNs() + HB_ODD_SEQ_WAIT_NS + 2 * period;
	SIZE_T off, chunk, len = (SIZE_T)Cf->bytes_copied;
	NTSTATUS status;

	if (Seqlock) {
		status = HbWaitSeq(Dev, Irp, AfterSeq, WaitNext, deadline, S1);
		if (!NT_SUCCESS(status))
			return status;
	} else {
		if (!HbHwEnter(Dev))
			return HbHwGoneStatus(Dev);
		*S1 = HbRd32(Dev, HB_REG_FRAME_SEQ);
	}
	HbFence();	/* FRAME_NUMBER and the pixels after FRAME_SEQ */
	Cf->frame_number = HbRd64(Dev, HB_REG_FRAME_NUMBER);
	Cf->frame_timestamp = HbRd64(Dev, HB_REG_FRAME_TS);
	HbHwExit(Dev);

	/* HwLock per chunk, so a removal waits at most one chunk */
	for (off = 0; off < len; off += chunk) {
		chunk = len - off < HB_COPY_CHUNK ? len - off : HB_COPY_CHUNK;
		if (!HbHwEnter(Dev))
			return HbHwGoneStatus(Dev);
		HbCopyFromFb(Dst + off, Dev->Fb + off, chunk);
		HbHwExit(Dev);
		if (HbShouldStop(Irp))
			return STATUS_CANCELLED;
	}

	if (!HbHwEnter(Dev))
		return HbHwGoneStatus(Dev);
	HbFence();	/* the pixels before the second FRAME_SEQ read */
	*S2 = HbRd32(Dev, HB_REG_FRAME_SEQ);
	HbHwExit(Dev);
	return STATUS_SUCCESS;
}

/*
 * IOCTL_HILBOX_COPY_FRAME.  Cf->buf is an address in the calling process
 * (caller's context, see the top of this file).  Ownership: the caller's
 * pages are locked with an MDL we allocate (MmProbeAndLockPages under the
 * SEH guard validates the address for write), written through a system
 * address of that MDL, then unlocked and the MDL freed before completion;
 * the pixels go straight from BAR2 into the caller's pages, no bounce
 * buffer.  The struct itself travels in the METHOD_BUFFERED system buffer.
 */
static NTSTATUS HbIoctlCopyFrame(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_copy_frame *io = Irp->AssociatedIrp.SystemBuffer;
	struct hilbox_copy_frame cf;
	PHB_DEVICE dev = File->Dev;
	ULONG64 t0 = HbNowNs();
	ULONG maxRetries, s1 = 0, s2 = 0, i;
	LONG64 prev;
	BOOLEAN seqlock;
	HB_LOCK_CALL lc;
	PUCHAR dst;
	NTSTATUS status;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(cf) ||
	    sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(cf))
		return STATUS_BUFFER_TOO_SMALL;
	cf = *io;
	if (!cf.buf_len || (cf.flags & ~HILBOX_COPY_ALL) ||
	    cf.max_retries > HB_MAX_RETRIES || cf.reserved0)
		return STATUS_INVALID_PARAMETER;
	for (i = 0; i < ARRAYSIZE(cf.reserved); i++)
		if (cf.reserved[i])
			return STATUS_INVALID_PARAMETER;
	if (HbGone(dev))
		return STATUS_NO_SUCH_DEVICE;
	if (IoGetRequestorProcess(Irp) != PsGetCurrentProcess() ||
	    KeGetCurrentIrql() != PASSIVE_LEVEL)
		return STATUS_INVALID_DEVICE_REQUEST;

	seqlock = !(cf.flags & HILBOX_COPY_NO_SEQLOCK);
	maxRetries = cf.max_retries ? cf.max_retries : dev->CopyRetries;
	cf.bytes_copied = cf.buf_len < dev->Info.fb_bytes ? cf.buf_len :
							    dev->Info.fb_bytes;
	cf.retries = 0;
	if (!cf.bytes_copied)
		return STATUS_DEVICE_NOT_READY;	/* never started */

	lc.Mdl = IoAllocateMdl((PVOID)(ULONG_PTR)cf.buf, (ULONG)cf.bytes_copied,
			       FALSE, FALSE, NULL);
	if (!lc.Mdl)
		return STATUS_INSUFFICIENT_RESOURCES;
	lc.Mode = Irp->RequestorMode;
	status = HbCallGuarded(HbLockGuarded, &lc);
	if (!NT_SUCCESS(status)) {
		IoFreeMdl(lc.Mdl);
		return status;	/* typically STATUS_ACCESS_VIOLATION */
	}
	dst = MmGetSystemAddressForMdlSafe(lc.Mdl,
					   NormalPagePriority | MdlMappingNoExecute);
	if (!dst) {
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto out;
	}

	for (;;) {
		status = HbCopyOnce(dev, Irp, &cf, dst, seqlock, cf.retries > 0,
				    s2, &s1, &s2);
		if (!NT_SUCCESS(status))
			goto out;
		if (!seqlock || s1 == s2)
			break;
		if (cf.retries >= maxRetries) {
			status = STATUS_RETRY;
			goto out;
		}
		cf.retries++;
	}

	cf.frame_seq = s1;
	cf.frame_seq_end = s2;
	prev = InterlockedExchange64(&File->NextFrame, (LONG64)(cf.frame_number + 1));
	cf.frames_dropped = (prev && cf.frame_number > (ULONG64)prev) ?
			    cf.frame_number - (ULONG64)prev : 0;
	cf.copy_ns = HbNowNs() - t0;
	*io = cf;
	Irp->IoStatus.Information = sizeof(cf);
	status = STATUS_SUCCESS;
out:
	MmUnlockPages(lc.Mdl);	/* also drops the system mapping */
	IoFreeMdl(lc.Mdl);
	return status;
}

/* ------------------------------------------------------------------ */

NTSTATUS HbDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
	PHB_FILE file = sp->FileObject ? sp->FileObject->FsContext : NULL;
	NTSTATUS status;

	status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);
	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);
	if (!file) {
		status = STATUS_INVALID_DEVICE_REQUEST;
		goto done;
	}

	/* completes or pends; the remove lock goes with the IRP */
	if (code == (ULONG)IOCTL_HILBOX_READ_EVENTS)
		return HbDispatchReadEvents(dev, Irp,
			sp->Parameters.DeviceIoControl.OutputBufferLength);

	Irp->IoStatus.Information = 0;
	switch (code) {
	case IOCTL_HILBOX_INFO:
		status = HbIoctlInfo(dev, Irp);
		break;
	case IOCTL_HILBOX_STATS:
		status = HbIoctlStats(dev, Irp);
		break;
	case IOCTL_HILBOX_CLOCK:
		status = HbIoctlClock(dev, Irp);
		break;
	case IOCTL_HILBOX_FRAME_STATE:
		status = HbIoctlFrameState(dev, Irp);
		break;
	case IOCTL_HILBOX_SET_EVENTS:
		status = HbIoctlSetEvents(file, Irp);
		break;
	case IOCTL_HILBOX_COPY_FRAME:
		status = HbIoctlCopyFrame(file, Irp);
		break;
	case IOCTL_HILBOX_MAP_FB:
		status = HbIoctlMap(file, Irp);
		break;
	case IOCTL_HILBOX_UNMAP_FB:
		status = HbIoctlUnmap(file, Irp);
		break;
	case IOCTL_HILBOX_EV_RING:
		status = HbIoctlEvRing(file, Irp);
		break;
	case IOCTL_HILBOX_EV_RING_WAIT:
		status = HbIoctlEvRingWait(file, Irp);
		break;
	default:
		status = STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
done:
	HbCompleteIrp(Irp, status, NT_SUCCESS(status) ? Irp->IoStatus.Information : 0);
	IoReleaseRemoveLock(&dev->RemoveLock, Irp);
	return status;
}
