// SPDX-License-Identifier: MIT
/*
 * events.c - mouse events: ISR, DPC, the driver ring and the inverted call.
 *
 * Flow (SPEC sections 5 and 7, INTERFACE.md section 3):
 *
 *   ISR (DIRQL)   reads INT_STATUS; not ours -> FALSE (shared INTx).  Masks
 *                 the device (INT_MASK = 0), acks the bits it read, queues
 *                 the DPC.  Masking is what keeps a level-triggered INTx
 *                 line (and MSI re-sends caused by an ack while the FIFO is
 *                 non-empty, SPEC 7) from re-interrupting before the DPC
 *                 has drained the FIFO.
 *   DPC (DISPATCH) SPEC 7 recipe: reads INT_STATUS, pops records while
 *                 EV_COUNT > 0 (at most HB_DPC_BUDGET per run) into the
 *                 ring, writes INT_ACK with the bits read, then unmasks
 *                 under the interrupt lock.  A record that arrived after the
 *                 drain keeps EV_READY set, so unmasking re-raises the
 *                 interrupt (a new MSI message / the INTx line): nothing is
 *                 missed.  Then it hands ring records to pended requests,
 *                 oldest request first, as many whole records as each holds.
 *   request       (IOCTL_HILBOX_READ_EVENTS or IRP_MJ_READ): if the ring
 *                 holds records, they are returned at once; otherwise the
 *                 IRP is parked in the cancel-safe queue (IoCsqInsertIrp).
 *
 * Ordering: the ring is non-empty only while no request is pended.  Both
 * "take from the ring or pend" (dispatch) and "remove the oldest pended IRP
 * and fill it" (DPC) run under DeliverLock, so the oldest request always gets
 * the lowest sequence numbers and every record goes to exactly one request.
 * With no request pended, records wait in the ring (Dev->RingCap records);
 * when it is full the incoming record is dropped and counted (drv_ring_drops).
 *
 * Buffer ownership: a pended IRP's system buffer (METHOD_BUFFERED /
 * DO_BUFFERED_IO, nonpaged, allocated by the I/O manager) is ours from
 * IoCsqInsertIrp until IoCompleteRequest; the I/O manager copies
 * IoStatus.Information bytes to the caller's buffer at completion.  The
 * CSQ owns the IRP while it is queued; whoever gets it back from
 * IoCsqRemoveNextIrp (DPC, cleanup, removal) or the cancel callback owns
 * it and completes it exactly once.
 */
#include "hilbox_drv.h"

#define HB_DEV_FROM_CSQ(c)	CONTAINING_RECORD((c), HB_DEVICE, Csq)
#define HB_IRP_CAPACITY(irp)	((irp)->Tail.Overlay.DriverContext[0])

/* ------------------------------------------------------------------ */
/* completion                                                          */

static void HbCompleteEventIrp(PHB_DEVICE Dev, PIRP Irp, NTSTATUS Status,
			       ULONG_PTR Info)
{
	Irp->IoStatus.Status = Status;
	Irp->IoStatus.Information = Info;
	IoCompleteRequest(Irp, NT_SUCCESS(Status) ? IO_MOUSE_INCREMENT :
						    IO_NO_INCREMENT);
	/* the remove lock was taken by the dispatch routine for this IRP */
	IoReleaseRemoveLock(&Dev->RemoveLock, Irp);
}

/* ------------------------------------------------------------------ */
/* cancel-safe queue callbacks (CsqLock held unless noted)             */

static VOID NTAPI HbCsqInsert(PIO_CSQ Csq, PIRP Irp)
{
	PHB_DEVICE dev = HB_DEV_FROM_CSQ(Csq);

	InsertTailList(&dev->PendingList, &Irp->Tail.Overlay.ListEntry);
	dev->PendingCount++;
}

static VOID NTAPI HbCsqRemove(PIO_CSQ Csq, PIRP Irp)
{
	PHB_DEVICE dev = HB_DEV_FROM_CSQ(Csq);

	RemoveEntryList(&Irp->Tail.Overlay.ListEntry);
	dev->PendingCount--;
}

/* PeekContext NULL: the oldest IRP; else the oldest of that file object. */
static PIRP NTAPI HbCsqPeekNext(PIO_CSQ Csq, PIRP Irp, PVOID PeekContext)
{
	PHB_DEVICE dev = HB_DEV_FROM_CSQ(Csq);
	PLIST_ENTRY e = Irp ? Irp->Tail.Overlay.ListEntry.Flink :
			      dev->PendingList.Flink;

	for (; e != &dev->PendingList; e = e->Flink) {
		PIRP next = CONTAINING_RECORD(e, IRP, Tail.Overlay.ListEntry);

		if (!PeekContext ||
		    IoGetCurrentIrpStackLocation(next)->FileObject == PeekContext)
			return next;
	}
	return NULL;
}

static VOID NTAPI HbCsqAcquireLock(PIO_CSQ Csq, PKIRQL Irql)
{
	KeAcquireSpinLock(&HB_DEV_FROM_CSQ(Csq)->CsqLock, Irql);
}

static VOID NTAPI HbCsqReleaseLock(PIO_CSQ Csq, KIRQL Irql)
{
	KeReleaseSpinLock(&HB_DEV_FROM_CSQ(Csq)->CsqLock, Irql);
}

/* Cancelled (CancelIoEx, thread exit): lock not held; IRP already unlinked. */
static VOID NTAPI HbCsqCompleteCanceled(PIO_CSQ Csq, PIRP Irp)
{
	HbCompleteEventIrp(HB_DEV_FROM_CSQ(Csq), Irp, STATUS_CANCELLED, 0);
}

void HbEventsInit(PHB_DEVICE Dev)
{
	KeInitializeSpinLock(&Dev->DeliverLock);
	KeInitializeSpinLock(&Dev->CsqLock);
	InitializeListHead(&Dev->PendingList);
	IoCsqInitialize(&Dev->Csq, HbCsqInsert, HbCsqRemove, HbCsqPeekNext,
			HbCsqAcquireLock, HbCsqReleaseLock,
			HbCsqCompleteCanceled);
}

/* ------------------------------------------------------------------ */
/* driver ring (DeliverLock held)                                      */

static void HbRingPush(PHB_DEVICE Dev, const struct hilbox_event *Rec)
{
	ULONG tail;

	if (Dev->RingCount == Dev->RingCap) {
		Dev->RingDrops++;
		return;
	}
	tail = Dev->RingHead + Dev->RingCount;
	if (tail >= Dev->RingCap)
		tail -= Dev->RingCap;
	Dev->Ring[tail] = *Rec;
	Dev->RingCount++;
}

/* Moves up to the IRP's capacity of records into its system buffer. */
static void HbFillIrp(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_event *out = Irp->AssociatedIrp.SystemBuffer;
	ULONG max = (ULONG)(ULONG_PTR)HB_IRP_CAPACITY(Irp);
	ULONG i, n = Dev->RingCount < max ? Dev->RingCount : max;

	for (i = 0; i < n; i++) {
		out[i] = Dev->Ring[Dev->RingHead];
		if (++Dev->RingHead == Dev->RingCap)
			Dev->RingHead = 0;
	}
	Dev->RingCount -= n;
	Dev->EvRead += n;
	Irp->IoStatus.Status = STATUS_SUCCESS;
	Irp->IoStatus.Information = (ULONG_PTR)n * sizeof(struct hilbox_event);
}

/* ------------------------------------------------------------------ */
/* interrupt                                                           */

BOOLEAN NTAPI HbIsr(PKINTERRUPT Interrupt, PVOID Context)
{
	PHB_DEVICE dev = Context;
	ULONG status;

	UNREFERENCED_PARAMETER(Interrupt);
	status = HbRd32(dev, HB_REG_INT_STATUS);
	if (status == 0xffffffffu || !(status & HB_INT_ALL))
		return FALSE;	/* not ours (shared INTx), or device gone */

	HbWr32(dev, HB_REG_INT_MASK, 0);
	HbWr32(dev, HB_REG_INT_ACK, status & HB_INT_ALL);
	InterlockedOr(&dev->IsrStatus, (LONG)(status & HB_INT_ALL));
	InterlockedIncrement64(&dev->IrqCount);
	if (status & HB_INT_EV_OVERFLOW)
		InterlockedIncrement64(&dev->IrqOverflows);
	KeInsertQueueDpc(&dev->Dpc, NULL, NULL);
	return TRUE;
}

BOOLEAN NTAPI HbMessageIsr(PKINTERRUPT Interrupt, PVOID Context, ULONG MessageId)
{
	UNREFERENCED_PARAMETER(MessageId);	/* one message */
	return HbIsr(Interrupt, Context);
}

/* Runs under the interrupt spin lock: serialised with the ISR. */
static BOOLEAN NTAPI HbSyncUnmask(PVOID Context)
{
	PHB_DEVICE dev = Context;

	if (dev->HwUsable)
		HbWr32(dev, HB_REG_INT_MASK, HB_INT_ALL);
	return TRUE;
}

static BOOLEAN NTAPI HbSyncMask(PVOID Context)
{
	HbWr32((PHB_DEVICE)Context, HB_REG_INT_MASK, 0);
	return TRUE;
}

/* Stop/removal: after HwUsable was cleared, so the DPC cannot unmask again. */
void HbMaskInterrupts(PHB_DEVICE Dev)
{
	if (Dev->IntObject)
		KeSynchronizeExecution(Dev->IntObject, HbSyncMask, Dev);
	else if (Dev->Regs)
		HbWr32(Dev, HB_REG_INT_MASK, 0);
}

static void HbPop(PHB_DEVICE Dev, struct hilbox_event *Rec)
{
	ULONG w[6];
	ULONG i;

	for (i = 0; i < 6; i++)	/* EV_HEAD is 6 x 32 bit: no 8-byte reads */
		w[i] = HbRd32(Dev, HB_REG_EV_HEAD + 4 * i);
	HbWr32(Dev, HB_REG_EV_POP, 1);

	Rec->seq = (ULONG64)w[1] << 32 | w[0];
	Rec->timestamp_ns = (ULONG64)w[3] << 32 | w[2];
	Rec->dx = (SHORT)(w[4] & 0xffff);
	Rec->dy = (SHORT)(w[4] >> 16);
	Rec->wheel = (CHAR)(w[5] & 0xff);
	Rec->buttons = (UCHAR)(w[5] >> 8);
	Rec->source = (UCHAR)(w[5] >> 16);
	Rec->flags = (UCHAR)(w[5] >> 24);
}

/* DeliverLock held. Bounded: leftovers re-raise EV_READY through the ack. */
static void HbDrainFifo(PHB_DEVICE Dev)
{
	ULONG budget = HB_DPC_BUDGET, n;
	struct hilbox_event rec;

	while (budget) {
		n = HbRd32(Dev, HB_REG_EV_COUNT);
		if (!n || n > Dev->Info.ev_fifo_depth)
			break;
		if (n > budget)
			n = budget;
		budget -= n;
		while (n--) {
			HbPop(Dev, &rec);
			Dev->EvReceived++;
			if (Dev->LastSeq && rec.seq > Dev->LastSeq + 1)
				Dev->SeqGaps += rec.seq - Dev->LastSeq - 1;
			Dev->LastSeq = rec.seq;
			HbRingPush(Dev, &rec);
		}
	}
}

VOID NTAPI HbDpc(PKDPC Dpc, PVOID Context, PVOID Arg1, PVOID Arg2)
{
	PHB_DEVICE dev = Context;
	LIST_ENTRY done;
	ULONG status;
	PIRP irp;

	UNREFERENCED_PARAMETER(Dpc);
	UNREFERENCED_PARAMETER(Arg1);
	UNREFERENCED_PARAMETER(Arg2);
	InitializeListHead(&done);
	InterlockedExchange(&dev->IsrStatus, 0);

	/*
	 * Registers stay mapped until the interrupt is disconnected and
	 * KeFlushQueuedDpcs returned (HbReleaseHardware), so this DPC may
	 * always touch them; a removed device reads all-ones.
	 */
	KeAcquireSpinLockAtDpcLevel(&dev->DeliverLock);
	status = HbRd32(dev, HB_REG_INT_STATUS);
	if (status != 0xffffffffu)
		HbDrainFifo(dev);
	while (dev->RingCount) {
		irp = IoCsqRemoveNextIrp(&dev->Csq, NULL);
		if (!irp)
			break;
		HbFillIrp(dev, irp);
		/* ours now: the list entry is free for our own list */
		InsertTailList(&done, &irp->Tail.Overlay.ListEntry);
	}
	KeReleaseSpinLockFromDpcLevel(&dev->DeliverLock);

	if (status != 0xffffffffu) {
		HbWr32(dev, HB_REG_INT_ACK, status & HB_INT_ALL);
		if (dev->IntObject)
			KeSynchronizeExecution(dev->IntObject, HbSyncUnmask, dev);
	}

	/* in request order; completion outside every lock */
	while (!IsListEmpty(&done)) {
		irp = CONTAINING_RECORD(RemoveHeadList(&done), IRP,
					Tail.Overlay.ListEntry);
		HbCompleteEventIrp(dev, irp, STATUS_SUCCESS,
				   irp->IoStatus.Information);
	}
}

/* ------------------------------------------------------------------ */
/* subscription (CONTROL.EV_ENABLE), PASSIVE_LEVEL                      */

static void HbHwSetEvents(PHB_DEVICE Dev, BOOLEAN On)
{
	if (!HbHwEnter(Dev))
		return;	/* stopped: HbRestoreEventEnable rewrites it at start */
	HbWr32(Dev, HB_REG_CONTROL, On ? HB_CONTROL_EV_ENABLE : 0);
	HbHwExit(Dev);
}

/* SubLock held. */
static void HbSetSubLocked(PHB_FILE File, HB_SUB Sub)
{
	PHB_DEVICE dev = File->Dev;
	BOOLEAN wasOn = File->Sub == HbSubOn, on = Sub == HbSubOn;

	File->Sub = Sub;
	if (wasOn == on)
		return;
	if (on) {
		if (dev->Subscribers++ == 0)
			HbHwSetEvents(dev, TRUE);
	} else {
		if (--dev->Subscribers == 0)
			HbHwSetEvents(dev, FALSE);
	}
}

static ULONG HbSubscribe(PHB_FILE File, HB_SUB Sub, BOOLEAN OnlyIfAuto)
{
	PHB_DEVICE dev = File->Dev;
	ULONG subscribers;

	KeWaitForSingleObject(&dev->SubLock, Executive, KernelMode, FALSE, NULL);
	if (!OnlyIfAuto || File->Sub == HbSubAuto)
		HbSetSubLocked(File, Sub);
	subscribers = dev->Subscribers;
	KeReleaseMutex(&dev->SubLock, FALSE);
	return subscribers;
}

void HbSetSubscription(PHB_FILE File, HB_SUB Sub)
{
	HbSubscribe(File, Sub, FALSE);
}

void HbRestoreEventEnable(PHB_DEVICE Dev)
{
	KeWaitForSingleObject(&Dev->SubLock, Executive, KernelMode, FALSE, NULL);
	HbHwSetEvents(Dev, Dev->Subscribers > 0);
	KeReleaseMutex(&Dev->SubLock, FALSE);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

/*
 * IOCTL_HILBOX_READ_EVENTS and IRP_MJ_READ; the caller holds the remove
 * lock for Irp, which is released when the IRP completes (here, or later by
 * whoever completes the pended IRP).
 */
NTSTATUS HbDispatchReadEvents(PHB_DEVICE Dev, PIRP Irp, ULONG Length)
{
	PHB_FILE file = IoGetCurrentIrpStackLocation(Irp)->FileObject->FsContext;
	ULONG cap = Length / sizeof(struct hilbox_event);
	NTSTATUS status;
	KIRQL irql;

	if (!file) {
		HbCompleteEventIrp(Dev, Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
		return STATUS_INVALID_DEVICE_REQUEST;
	}
	/* a record is never split: too small a buffer consumes nothing */
	if (!cap) {
		HbCompleteEventIrp(Dev, Irp, STATUS_BUFFER_TOO_SMALL, 0);
		return STATUS_BUFFER_TOO_SMALL;
	}
	if (cap > HB_MAX_READ_RECORDS)
		cap = HB_MAX_READ_RECORDS;
	HB_IRP_CAPACITY(Irp) = (PVOID)(ULONG_PTR)cap;

	/* first read of a file that never used SET_EVENTS subscribes it */
	if (file->Sub == HbSubAuto && KeGetCurrentIrql() == PASSIVE_LEVEL)
		HbSubscribe(file, HbSubOn, TRUE);

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	if (Dev->EvDead) {
		status = STATUS_NO_SUCH_DEVICE;
	} else if (file->Closing) {
		status = STATUS_CANCELLED;	/* raced with CLEANUP */
	} else if (Dev->RingCount) {
		HbFillIrp(Dev, Irp);		/* no request can be pended */
		status = STATUS_SUCCESS;
	} else {
		/* marks the IRP pending; completes it if already cancelled */
		IoCsqInsertIrp(&Dev->Csq, Irp, NULL);
		KeReleaseSpinLock(&Dev->DeliverLock, irql);
		return STATUS_PENDING;
	}
	KeReleaseSpinLock(&Dev->DeliverLock, irql);
	HbCompleteEventIrp(Dev, Irp, status,
			   NT_SUCCESS(status) ? Irp->IoStatus.Information : 0);
	return status;
}

/* IRP_MJ_CLEANUP: the file's pended requests end with STATUS_CANCELLED. */
void HbFlushFileRequests(PHB_DEVICE Dev, PHB_FILE File)
{
	KIRQL irql;
	PIRP irp;

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	File->Closing = TRUE;	/* no new request of this file is pended */
	KeReleaseSpinLock(&Dev->DeliverLock, irql);

	while ((irp = IoCsqRemoveNextIrp(&Dev->Csq, File->FileObject)) != NULL)
		HbCompleteEventIrp(Dev, irp, STATUS_CANCELLED, 0);
}

/* Surprise removal / removal: every pended request fails, new ones too. */
void HbFailAllRequests(PHB_DEVICE Dev, NTSTATUS Status)
{
	KIRQL irql;
	PIRP irp;

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	Dev->EvDead = TRUE;
	KeReleaseSpinLock(&Dev->DeliverLock, irql);

	while ((irp = IoCsqRemoveNextIrp(&Dev->Csq, NULL)) != NULL)
		HbCompleteEventIrp(Dev, irp, Status, 0);
}

/* IOCTL_HILBOX_SET_EVENTS (METHOD_BUFFERED, in/out struct hilbox_events_ctl). */
NTSTATUS HbIoctlSetEvents(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_events_ctl *ctl = Irp->AssociatedIrp.SystemBuffer;
	PHB_DEVICE dev = File->Dev;
	ULONG subscribers, i;
	KIRQL irql;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*ctl) ||
	    sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*ctl))
		return STATUS_BUFFER_TOO_SMALL;
	if (ctl->enable > 1 || (ctl->flags & ~HILBOX_EVCTL_ALL) ||
	    ctl->subscribers || ctl->ring_level)
		return STATUS_INVALID_PARAMETER;
	for (i = 0; i < ARRAYSIZE(ctl->reserved); i++)
		if (ctl->reserved[i])
			return STATUS_INVALID_PARAMETER;
	if (dev->EvDead)
		return STATUS_NO_SUCH_DEVICE;

	subscribers = HbSubscribe(File, ctl->enable ? HbSubOn : HbSubOff, FALSE);

	KeAcquireSpinLock(&dev->DeliverLock, &irql);
	if (ctl->flags & HILBOX_EVCTL_FLUSH) {
		dev->Flushed += dev->RingCount;
		dev->RingCount = 0;
		dev->RingHead = 0;
	}
	ctl->ring_level = dev->RingCount;
	KeReleaseSpinLock(&dev->DeliverLock, irql);

	ctl->subscribers = subscribers;
	Irp->IoStatus.Information = sizeof(*ctl);
	return STATUS_SUCCESS;
}
