// SPDX-License-Identifier: MIT
/*
 * events.c - mouse events: ISR, DPC, the driver ring and the inverted call.
 *
 * Flow (SPEC sections 5 and 7, INTERFACE.md section 3):
 *
 *   ISR (DIRQL)   claims the interrupt only when INT_STATUS & INT_MASK is
 *                 non-zero (SPEC 7: exactly the condition that asserts the
 *                 line), INT_MASK taken from Dev->IntMask, the driver's copy
 *                 of what it wrote (no MMIO read).  Anything else - a shared
 *                 INTx line raised by another device, an all-ones read of a
 *                 device that is gone, an interrupt that is being
 *                 disconnected (!IntUsable) - returns FALSE.  When ours:
 *                 masks the device (INT_MASK = 0, IntMask = 0), acks the
 *                 bits it claimed, queues the DPC.  Masking is what keeps a
 *                 level-triggered INTx line (and MSI re-sends caused by an
 *                 ack while the FIFO is non-empty, SPEC 7) from
 *                 re-interrupting before the DPC has drained the FIFO.
 *   DPC (DISPATCH) SPEC 7 recipe: reads INT_STATUS, pops records while
 *                 EV_COUNT > 0 (at most HB_DPC_BUDGET per run), writes
 *                 INT_ACK with the bits read, then unmasks under the
 *                 interrupt lock (only while IntUsable).  A record that
 *                 arrived after the drain keeps EV_READY set, so unmasking
 *                 re-raises the interrupt (a new MSI message / the INTx
 *                 line): nothing is missed.  Each popped record goes to the
 *                 ring; when the ring is full, the oldest pended request
 *                 takes the ring's records and then further records straight
 *                 from the FIFO until it is full (HbDeliver).  After the
 *                 drain the remaining ring records go to pended requests,
 *                 oldest request first, as many whole records as each holds.
 *   request       (IOCTL_HILBOX_READ_EVENTS or IRP_MJ_READ): if the ring
 *                 holds records, they are returned at once; otherwise the
 *                 IRP is parked in the cancel-safe queue (IoCsqInsertIrp).
 *
 * Completion order: every request that got records - in the DPC, or at
 * once in the dispatch routine - is queued on Dev->CompleteList while
 * DeliverLock is still held, i.e. in the order the records were handed out,
 * and HbCompleteInOrder completes that list head first, one thread at a
 * time.  Without it a request satisfied at once on one CPU could complete
 * before the DPC on another CPU completed the request holding the older
 * records (the DPC completes outside every lock), and one consumer's I/O
 * completion port would see the newer records first.
 *
 * Ordering: outside DeliverLock the ring is non-empty only while no request
 * is pended.  "Take from the ring or pend" (dispatch) and the DPC's whole
 * drain-and-hand-over run under DeliverLock, so the oldest request always
 * gets the lowest sequence numbers and every record goes to exactly one
 * request.  A record is dropped (counted in drv_ring_drops) only when the
 * ring (Dev->RingCap records) is full and no request is waiting.
 *
 * Buffer ownership: a pended IRP's system buffer (METHOD_BUFFERED /
 * DO_BUFFERED_IO, nonpaged, allocated by the I/O manager) is ours from
 * IoCsqInsertIrp until IoCompleteRequest; the I/O manager copies
 * IoStatus.Information bytes to the caller's buffer at completion.  The
 * CSQ owns the IRP while it is queued; whoever gets it back from
 * IoCsqRemoveNextIrp (DPC, cleanup, removal) or the cancel callback owns
 * it and completes it exactly once.  Within one DPC run an IRP taken from
 * the CSQ is held in HB_HANDOVER (Open while being filled, then Done) and
 * completed by that run after DeliverLock is released.
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
	KeInitializeSpinLock(&Dev->CompleteLock);
	InitializeListHead(&Dev->CompleteList);
	Dev->Completing = FALSE;
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

/*
 * An event request's fill level is IoStatus.Information (bytes of whole
 * records already in its system buffer; 0 when dispatched), its capacity
 * HB_IRP_CAPACITY (records).
 */
static ULONG HbIrpHeld(PIRP Irp)
{
	return (ULONG)(Irp->IoStatus.Information / sizeof(struct hilbox_event));
}

static ULONG HbIrpRoom(PIRP Irp)
{
	return (ULONG)(ULONG_PTR)HB_IRP_CAPACITY(Irp) - HbIrpHeld(Irp);
}

/*
 * Moves ring records, oldest first, behind those the IRP holds, while it has
 * room; when records stay behind, up to the last whole report that fits
 * (END_OF_REPORT, INTERFACE.md 3: reports stay whole), if one does.
 */
static void HbFillIrp(PHB_DEVICE Dev, PIRP Irp)
{
	struct hilbox_event *out = Irp->AssociatedIrp.SystemBuffer;
	ULONG have = HbIrpHeld(Irp), room = HbIrpRoom(Irp);
	ULONG i, at, n = Dev->RingCount < room ? Dev->RingCount : room;

	if (n < Dev->RingCount) {
		for (i = n; i > 0; i--) {
			at = Dev->RingHead + i - 1;
			if (at >= Dev->RingCap)
				at -= Dev->RingCap;
			if (Dev->Ring[at].flags & HILBOX_EVF_END_OF_REPORT) {
				n = i;
				break;
			}
		}
	}

	for (i = 0; i < n; i++) {
		out[have + i] = Dev->Ring[Dev->RingHead];
		if (++Dev->RingHead == Dev->RingCap)
			Dev->RingHead = 0;
	}
	Dev->RingCount -= n;
	Dev->EvRead += n;
	Irp->IoStatus.Information = (ULONG_PTR)(have + n) * sizeof(struct hilbox_event);
}

/* One record straight into the IRP (the caller checked HbIrpRoom). */
static void HbIrpAppend(PHB_DEVICE Dev, PIRP Irp, const struct hilbox_event *Rec)
{
	struct hilbox_event *out = Irp->AssociatedIrp.SystemBuffer;

	out[HbIrpHeld(Irp)] = *Rec;
	Dev->EvRead++;
	Irp->IoStatus.Information += sizeof(struct hilbox_event);
}

/*
 * The requests one DPC run fills (DeliverLock held while it changes).
 * Every IRP here is the DPC's: IoCsqRemoveNextIrp took it out of the
 * cancel-safe queue (cancellation can no longer complete it), and the DPC
 * completes it exactly once, after releasing DeliverLock.
 *   Open  the request being filled straight from the FIFO, or NULL.
 *         Invariant: Open != NULL only while the ring is empty - it took
 *         the ring's (older) records first - so records reach requests in
 *         sequence order.
 *   Done  filled requests, oldest request (lowest sequence numbers) first;
 *         linked through Tail.Overlay.ListEntry, free once out of the CSQ.
 */
typedef struct _HB_HANDOVER {
	PIRP Open;
	LIST_ENTRY Done;
} HB_HANDOVER;

static void HbCloseOpen(HB_HANDOVER *H)
{
	InsertTailList(&H->Done, &H->Open->Tail.Overlay.ListEntry);
	H->Open = NULL;
}

/*
 * One record popped from the FIFO (DeliverLock held).  A full ring is not a
 * reason to drop while a request waits: the oldest pended request takes the
 * ring's records, and the following records go straight into it until it is
 * full.  Dropped (and counted) only when the ring is full and no request is
 * pended.
 */
static void HbDeliver(PHB_DEVICE Dev, HB_HANDOVER *H, const struct hilbox_event *Rec)
{
	if (HbEvRingStore(Dev, Rec))	/* a shared-memory ring takes every record */
		return;
	if (!H->Open && Dev->RingCount == Dev->RingCap) {
		H->Open = IoCsqRemoveNextIrp(&Dev->Csq, NULL);
		if (H->Open) {
			HbFillIrp(Dev, H->Open);	/* the older records first */
			if (!HbIrpRoom(H->Open))
				HbCloseOpen(H);		/* ring has room again */
		}
	}
	if (H->Open) {				/* ring empty */
		HbIrpAppend(Dev, H->Open, Rec);
		if (!HbIrpRoom(H->Open))
			HbCloseOpen(H);
		return;
	}
	HbRingPush(Dev, Rec);
}

/* End of the drain (DeliverLock held): ring records to pended requests. */
static void HbHandOverRing(PHB_DEVICE Dev, HB_HANDOVER *H)
{
	PIRP irp;

	if (H->Open)
		HbCloseOpen(H);		/* holds >= 1 record, the ring is empty */
	while (Dev->RingCount) {
		irp = IoCsqRemoveNextIrp(&Dev->Csq, NULL);
		if (!irp)
			break;
		HbFillIrp(Dev, irp);
		InsertTailList(&H->Done, &irp->Tail.Overlay.ListEntry);
	}
}

/* ------------------------------------------------------------------ */
/* completion in hand-out order                                        */

/* DeliverLock held: the requests of Done, in order, behind those queued before. */
static void HbQueueCompletions(PHB_DEVICE Dev, PLIST_ENTRY Done)
{
	KeAcquireSpinLockAtDpcLevel(&Dev->CompleteLock);
	while (!IsListEmpty(Done))
		InsertTailList(&Dev->CompleteList, RemoveHeadList(Done));
	KeReleaseSpinLockFromDpcLevel(&Dev->CompleteLock);
}

/*
 * No lock held: completes Dev->CompleteList head first.  One thread at a
 * time does it; a caller that finds another at work leaves its requests to
 * it (that thread loops until the list is empty), so IoCompleteRequest is
 * called in hand-out order and never under a driver lock.
 */
static void HbCompleteInOrder(PHB_DEVICE Dev)
{
	KIRQL irql;
	PIRP irp;

	KeAcquireSpinLock(&Dev->CompleteLock, &irql);
	if (Dev->Completing) {
		KeReleaseSpinLock(&Dev->CompleteLock, irql);
		return;
	}
	Dev->Completing = TRUE;
	while (!IsListEmpty(&Dev->CompleteList)) {
		irp = CONTAINING_RECORD(RemoveHeadList(&Dev->CompleteList), IRP,
					Tail.Overlay.ListEntry);
		KeReleaseSpinLock(&Dev->CompleteLock, irql);
		HbCompleteEventIrp(Dev, irp, STATUS_SUCCESS, irp->IoStatus.Information);
		KeAcquireSpinLock(&Dev->CompleteLock, &irql);
	}
	Dev->Completing = FALSE;
	KeReleaseSpinLock(&Dev->CompleteLock, irql);
}

/* ------------------------------------------------------------------ */
/* interrupt                                                           */

/*
 * Runs holding the interrupt spin lock, like every writer of IntUsable and
 * IntMask, so both are stable here.  SPEC 7: the device interrupts iff
 * INT_STATUS & INT_MASK != 0; only that is claimed.
 */
BOOLEAN NTAPI HbIsr(PKINTERRUPT Interrupt, PVOID Context)
{
	PHB_DEVICE dev = Context;
	ULONG status, mine;

	UNREFERENCED_PARAMETER(Interrupt);
	if (!dev->IntUsable || !dev->IntMask)
		return FALSE;	/* masked (or being disconnected): not asserting */
	status = HbRd32(dev, HB_REG_INT_STATUS);
	if (status == 0xffffffffu)
		return FALSE;	/* device gone (surprise removal): not an interrupt */
	mine = status & dev->IntMask;
	if (!mine)
		return FALSE;	/* not ours (shared INTx) */

	dev->IntMask = 0;
	HbWr32(dev, HB_REG_INT_MASK, 0);
	HbWr32(dev, HB_REG_INT_ACK, mine);
	InterlockedOr(&dev->IsrStatus, (LONG)mine);
	InterlockedIncrement64(&dev->IrqCount);
	if (mine & HB_INT_EV_OVERFLOW)
		InterlockedIncrement64(&dev->IrqOverflows);
	KeInsertQueueDpc(&dev->Dpc, NULL, NULL);
	return TRUE;
}

BOOLEAN NTAPI HbMessageIsr(PKINTERRUPT Interrupt, PVOID Context, ULONG MessageId)
{
	UNREFERENCED_PARAMETER(MessageId);	/* one message */
	/* our own vector: a message with nothing to claim is spurious, counted */
	if (!HbIsr(Interrupt, Context))
		InterlockedIncrement64(&((PHB_DEVICE)Context)->IrqSpurious);
	return TRUE;
}

/*
 * KeSynchronizeExecution routines: run under the interrupt spin lock,
 * serialised with the ISR.  INT_MASK is written only here and in the ISR
 * once the interrupt is connected, so Dev->IntMask always equals it.
 */
static BOOLEAN NTAPI HbSyncUnmask(PVOID Context)
{
	PHB_DEVICE dev = Context;

	/* a retired interrupt (HbSyncRetire ran first) stays masked */
	if (dev->IntUsable && dev->HwUsable) {
		dev->IntMask = HB_INT_ALL;
		HbWr32(dev, HB_REG_INT_MASK, HB_INT_ALL);
	}
	return TRUE;
}

static BOOLEAN NTAPI HbSyncEnable(PVOID Context)
{
	((PHB_DEVICE)Context)->IntUsable = TRUE;
	return HbSyncUnmask(Context);
}

typedef struct _HB_RETIRE {
	PHB_DEVICE Dev;
	BOOLEAN DeviceGone;
} HB_RETIRE;

static BOOLEAN NTAPI HbSyncRetire(PVOID Context)
{
	HB_RETIRE *r = Context;
	PHB_DEVICE dev = r->Dev;

	dev->IntUsable = FALSE;	/* the ISR claims nothing, queues no DPC */
	dev->IntMask = 0;
	/*
	 * Mask the device unless it is gone.  A surprise removal may also
	 * mean a failed but present device (PNP_DEVICE_FAILED): mask it when
	 * it still answers, so it cannot hold a shared line asserted once
	 * its ISR is disconnected.
	 */
	if (!r->DeviceGone || HbRd32(dev, HB_REG_ID) == HB_ID_MAGIC)
		HbWr32(dev, HB_REG_INT_MASK, 0);
	return TRUE;
}

/* START_DEVICE: connected, HwUsable set - the ISR may claim from now on. */
void HbUnmaskInterrupts(PHB_DEVICE Dev)
{
	KeSynchronizeExecution(Dev->IntObject, HbSyncEnable, Dev);
}

/*
 * First step of HbDisconnectInterrupt, while the interrupt is connected:
 * IntUsable = FALSE and the device masked, atomically with respect to the
 * ISR.  Afterwards no ISR queues the DPC and no DPC unmasks.
 */
void HbRetireInterrupts(PHB_DEVICE Dev, BOOLEAN DeviceGone)
{
	HB_RETIRE r;

	r.Dev = Dev;
	r.DeviceGone = DeviceGone;
	KeSynchronizeExecution(Dev->IntObject, HbSyncRetire, &r);
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

/* DeliverLock held. Bounded: leftovers re-raise EV_READY through the ack. Returns the records popped. */
static ULONG HbDrainFifo(PHB_DEVICE Dev, HB_HANDOVER *H)
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
			HbDeliver(Dev, H, &rec);
		}
	}
	return HB_DPC_BUDGET - budget;
}

VOID NTAPI HbDpc(PKDPC Dpc, PVOID Context, PVOID Arg1, PVOID Arg2)
{
	PHB_DEVICE dev = Context;
	HB_HANDOVER h;
	ULONG status, seen, popped = 0;
	BOOLEAN storm = FALSE;
	PKEVENT ring_event;

	UNREFERENCED_PARAMETER(Dpc);
	UNREFERENCED_PARAMETER(Arg1);
	UNREFERENCED_PARAMETER(Arg2);
	h.Open = NULL;
	InitializeListHead(&h.Done);
	seen = (ULONG)InterlockedExchange(&dev->IsrStatus, 0);

	/*
	 * Registers and the interrupt object outlive every run of this DPC:
	 * HbDisconnectInterrupt clears IntUsable (so the ISR queues no new
	 * run) and waits in KeFlushQueuedDpcs before it disconnects, and the
	 * BARs are unmapped after that.  A removed device reads all-ones.
	 */
	KeAcquireSpinLockAtDpcLevel(&dev->DeliverLock);
	status = HbRd32(dev, HB_REG_INT_STATUS);
	if (status != 0xffffffffu)
		popped = HbDrainFifo(dev, &h);
	HbHandOverRing(dev, &h);
	HbQueueCompletions(dev, &h.Done);	/* in hand-out order */
	ring_event = HbEvRingPublish(dev);	/* the shared ring's batch */
	KeReleaseSpinLockFromDpcLevel(&dev->DeliverLock);
	if (ring_event) {
		KeSetEvent(ring_event, IO_NO_INCREMENT, FALSE);
		ObDereferenceObject(ring_event);
	}

	/*
	 * A storm (watchdog.c): the ISR saw EV_READY and there was nothing
	 * to pop, 64 runs in a row - a stuck interrupt.  Left masked; the
	 * watchdog drains and unmasks once a tick.
	 */
	if ((seen & HB_INT_EV_READY) && !popped) {
		if (++dev->EmptyRuns >= HB_STORM_RUNS) {
			dev->EmptyRuns = 0;
			storm = TRUE;
		}
	} else {
		dev->EmptyRuns = 0;
	}
	if (storm) {
		InterlockedIncrement64(&dev->IrqStorms);
		InterlockedExchange(&dev->StormMasked, 1);
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_WARNING_LEVEL,
			   "hilbox%lu: interrupt storm: masked, polled by the watchdog\n",
			   dev->Instance);
	}

	if (status != 0xffffffffu) {
		HbWr32(dev, HB_REG_INT_ACK, status & HB_INT_ALL);
		/*
		 * IntObject is still connected even if IntUsable turns FALSE
		 * right after this test (the disconnect waits for this run);
		 * HbSyncUnmask re-checks it under the interrupt lock.
		 */
		if (dev->IntUsable && !storm)
			KeSynchronizeExecution(dev->IntObject, HbSyncUnmask, dev);
	}

	/* in hand-out order, outside every lock, one thread at a time */
	HbCompleteInOrder(dev);
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

/* What a first read does: subscribe unless SET_EVENTS decided. */
void HbAutoSubscribe(PHB_FILE File)
{
	HbSubscribe(File, HbSubOn, TRUE);
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
	Irp->IoStatus.Information = 0;	/* fill level: nothing yet */

	/* first read of a file that never used SET_EVENTS subscribes it */
	if (file->Sub == HbSubAuto && KeGetCurrentIrql() == PASSIVE_LEVEL)
		HbSubscribe(file, HbSubOn, TRUE);

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	if (Dev->EvDead) {
		status = STATUS_NO_SUCH_DEVICE;
	} else if (Dev->EvLinkDown) {
		status = STATUS_IO_DEVICE_ERROR;	/* watchdog.c: the link is down */
	} else if (file->Closing) {
		status = STATUS_CANCELLED;	/* raced with CLEANUP */
	} else if (Dev->RingCount) {
		/*
		 * No request can be pended.  Completed through the ordered list,
		 * behind requests the DPC filled with older records and has not
		 * completed yet: pending, since another thread may complete it.
		 */
		HbFillIrp(Dev, Irp);
		IoMarkIrpPending(Irp);
		KeAcquireSpinLockAtDpcLevel(&Dev->CompleteLock);
		InsertTailList(&Dev->CompleteList, &Irp->Tail.Overlay.ListEntry);
		KeReleaseSpinLockFromDpcLevel(&Dev->CompleteLock);
		KeReleaseSpinLock(&Dev->DeliverLock, irql);
		HbCompleteInOrder(Dev);
		return STATUS_PENDING;
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

/* Completes every request still in the cancel-safe queue with Status. */
static void HbCompletePended(PHB_DEVICE Dev, NTSTATUS Status)
{
	PIRP irp;

	while ((irp = IoCsqRemoveNextIrp(&Dev->Csq, NULL)) != NULL)
		HbCompleteEventIrp(Dev, irp, Status, 0);
}

/*
 * The link went down (Down): pended requests complete with
 * STATUS_IO_DEVICE_ERROR and new ones fail with it; or it came back.
 */
void HbFailPendingForLink(PHB_DEVICE Dev, BOOLEAN Down)
{
	KIRQL irql;

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	Dev->EvLinkDown = Down;
	KeReleaseSpinLock(&Dev->DeliverLock, irql);
	HbEvRingSetState(Dev, Down ? HILBOX_EV_RING_LINK_DOWN : HILBOX_EV_RING_LIVE);
	if (Down)
		HbCompletePended(Dev, STATUS_IO_DEVICE_ERROR);
}

/* Surprise removal / removal: every pended request fails, new ones too. */
void HbFailAllRequests(PHB_DEVICE Dev, NTSTATUS Status)
{
	KIRQL irql;

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	Dev->EvDead = TRUE;
	KeReleaseSpinLock(&Dev->DeliverLock, irql);
	HbEvRingSetState(Dev, HILBOX_EV_RING_DEAD);
	HbCompletePended(Dev, Status);
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
