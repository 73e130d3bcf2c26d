// SPDX-License-Identifier: MIT
/*
 * evring.c - the shared-memory event ring (INTERFACE.md 3b), Windows form.
 *
 * The seed thread's first idea ("shared memory plus an event"), done so that
 * a hostile process cannot hurt the driver:
 *   - the ring is one NonPagedPoolNx allocation owned by the driver: header
 *     page + slots.  Only the DPC writes it (under DeliverLock); the driver
 *     never reads back anything a process could have written - the
 *     consumer's position comes in through IOCTL_HILBOX_EV_RING_WAIT and is
 *     checked against the driver's own copy.
 *   - processes see it through read-only views made by HbMapView (the BAR2
 *     machinery of mapping.c: MdlMappingNoWrite, one of four paths unmaps
 *     each view in its owner's address space - the owner's IOCTL, the
 *     file's CLEANUP, the owner's exit, removal).  A view references the
 *     ring, so the memory outlives every view.
 *   - notification is an event object of the caller's (an auto-reset event
 *     is the natural choice), referenced by handle with an access check in
 *     the caller's context and set by the DPC after each batch - the
 *     SetEvent the thread measured against the inverted call.
 *   - one ring per device; while it exists every record goes to it (none to
 *     pended READ_EVENTS requests).  It belongs to the file that made it:
 *     that file's CLEANUP detaches it (the DPC no longer sees it) and drops
 *     the file's reference.  A duplicated or inherited handle refers to the
 *     same file object: such a holder may release records, as reading the
 *     stream would let it, and can never write the ring.
 */
#include "hilbox_drv.h"

#define HB_EV_HDR_BYTES		PAGE_SIZE

/*
 * Store -> store order for the consumer in another process (x86-64 keeps
 * stores in order; this stops the compiler and fences where it matters,
 * like KeMemoryBarrier, which MinGW-w64's headers do not declare).
 */
#define HbStoreBarrier()	__atomic_thread_fence(__ATOMIC_SEQ_CST)

void HbEvRingRelease(PHB_EV_RING Ring)
{
	if (InterlockedDecrement(&Ring->RefCount))
		return;
	if (Ring->Event)
		ObDereferenceObject(Ring->Event);
	ExFreePoolWithTag(Ring->Hdr, HB_POOL_TAG);
	ExFreePoolWithTag(Ring, HB_POOL_TAG);
}

/* DeliverLock held (the DPC): one record into the ring, or a counted drop. */
BOOLEAN HbEvRingStore(PHB_DEVICE Dev, const struct hilbox_event *Rec)
{
	PHB_EV_RING r = Dev->EvRing;
	struct hilbox_ev_slot *slot;

	if (!r)
		return FALSE;
	if (r->Tail - r->Head >= r->Records) {
		r->Dropped++;
		Dev->RingDrops++;
		return TRUE;
	}
	slot = &r->Slots[r->Tail & (r->Records - 1)];
	slot->ev = *Rec;
	HbStoreBarrier();	/* the record before its position */
	*(volatile ULONG64 *)&slot->pos = r->Tail;
	r->Tail++;
	r->Stored = TRUE;
	Dev->EvRead++;
	return TRUE;
}

/*
 * DeliverLock held, end of a DPC run: make the batch visible (tail after the
 * slots) and return the event to set once the lock is dropped, or NULL.
 */
PKEVENT HbEvRingPublish(PHB_DEVICE Dev)
{
	PHB_EV_RING r = Dev->EvRing;

	if (!r || !r->Stored)
		return NULL;
	r->Stored = FALSE;
	HbStoreBarrier();
	*(volatile ULONG64 *)&r->Hdr->tail = r->Tail;
	*(volatile ULONG64 *)&r->Hdr->dropped = r->Dropped;
	r->Hdr->wakeups++;
	if (r->Event)
		ObReferenceObject(r->Event);	/* the ring may be detached meanwhile */
	return r->Event;
}

/* Any IRQL <= DISPATCH_LEVEL: removal (DEAD), link down / up. */
void HbEvRingSetState(PHB_DEVICE Dev, ULONG State)
{
	PKEVENT ev = NULL;
	KIRQL irql;

	KeAcquireSpinLock(&Dev->DeliverLock, &irql);
	if (Dev->EvRing) {
		*(volatile ULONG *)&Dev->EvRing->Hdr->state = State;
		ev = Dev->EvRing->Event;
		if (ev)
			ObReferenceObject(ev);
	}
	KeReleaseSpinLock(&Dev->DeliverLock, irql);
	if (ev) {
		KeSetEvent(ev, IO_NO_INCREMENT, FALSE);	/* the consumer looks */
		ObDereferenceObject(ev);
	}
}

/* IRP_MJ_CLEANUP of File, after its views were revoked. */
void HbEvRingDetach(PHB_FILE File)
{
	PHB_DEVICE dev = File->Dev;
	PHB_EV_RING r;
	KIRQL irql;

	KeAcquireSpinLock(&dev->DeliverLock, &irql);
	r = File->EvRing;
	File->EvRing = NULL;
	if (r && dev->EvRing == r)
		dev->EvRing = NULL;	/* records go to requests again */
	KeReleaseSpinLock(&dev->DeliverLock, irql);
	if (r)
		HbEvRingRelease(r);	/* the file's reference */
}

static BOOLEAN HbPowerOfTwo(ULONG v)
{
	return v && !(v & (v - 1));
}

/* IOCTL_HILBOX_EV_RING: METHOD_BUFFERED in/out struct hilbox_win_ev_ring. */
NTSTATUS HbIoctlEvRing(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_win_ev_ring *req = Irp->AssociatedIrp.SystemBuffer;
	PHB_DEVICE dev = File->Dev;
	PHB_EV_RING r;
	PKEVENT ev = NULL;
	PVOID user_va = NULL;
	NTSTATUS status;
	SIZE_T bytes;
	KIRQL irql;
	BOOLEAN busy;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*req) ||
	    sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*req))
		return STATUS_BUFFER_TOO_SMALL;
	if (req->flags || req->user_va || req->mapped_length ||
	    req->reserved[0] || req->reserved[1])
		return STATUS_INVALID_PARAMETER;
	if (req->records < HILBOX_EV_RING_MIN || req->records > HILBOX_EV_RING_MAX ||
	    !HbPowerOfTwo(req->records))
		return STATUS_INVALID_PARAMETER;
	if (!HbInCallerContext(Irp))
		return STATUS_INVALID_DEVICE_REQUEST;
	if (req->event) {
		/* the caller's own handle, checked for type and access */
		status = ObReferenceObjectByHandle((HANDLE)(ULONG_PTR)req->event,
						   EVENT_MODIFY_STATE, *ExEventObjectType,
						   UserMode, (PVOID *)&ev, NULL);
		if (!NT_SUCCESS(status))
			return STATUS_INVALID_PARAMETER;
	}

	bytes = HB_EV_HDR_BYTES + (SIZE_T)req->records * sizeof(struct hilbox_ev_slot);
	bytes = (bytes + PAGE_SIZE - 1) & ~((SIZE_T)PAGE_SIZE - 1);
	r = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(*r), HB_POOL_TAG);
	if (!r) {
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto out_event;
	}
	RtlZeroMemory(r, sizeof(*r));
	/* at least a page: page aligned, so views start at the header */
	r->Hdr = ExAllocatePoolWithTag(NonPagedPoolNx, bytes, HB_POOL_TAG);
	if (!r->Hdr) {
		ExFreePoolWithTag(r, HB_POOL_TAG);
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto out_event;
	}
	RtlZeroMemory(r->Hdr, bytes);
	r->Slots = (struct hilbox_ev_slot *)((PUCHAR)r->Hdr + HB_EV_HDR_BYTES);
	r->Bytes = bytes;
	r->Records = req->records;
	r->Event = ev;		/* the ring's reference from here on */
	ev = NULL;
	r->RefCount = 1;	/* the file's */
	r->Hdr->magic = HILBOX_EV_RING_MAGIC;
	r->Hdr->version = HILBOX_EV_RING_VERSION;
	r->Hdr->records = req->records;
	r->Hdr->slot_size = sizeof(struct hilbox_ev_slot);
	r->Hdr->slots_offset = HB_EV_HDR_BYTES;
	r->Hdr->state = HILBOX_EV_RING_LIVE;

	if (!HbHwEnter(dev)) {
		status = HbHwGoneStatus(dev);
		HbEvRingRelease(r);
		return status;
	}
	/* one ring per device; the file must still be open */
	KeAcquireSpinLock(&dev->DeliverLock, &irql);
	busy = dev->EvRing || File->EvRing || File->Closing || dev->EvDead;
	if (!busy) {
		File->EvRing = r;
		dev->EvRing = r;
		if (dev->EvLinkDown)
			r->Hdr->state = HILBOX_EV_RING_LINK_DOWN;
	}
	KeReleaseSpinLock(&dev->DeliverLock, irql);
	if (busy) {
		HbHwExit(dev);
		HbEvRingRelease(r);
		return File->Closing ? STATUS_FILE_CLOSED :
		       dev->EvDead ? STATUS_NO_SUCH_DEVICE : STATUS_DEVICE_BUSY;
	}

	/* the view; without one the ring goes again (records to requests) */
	status = HbMapView(File, r->Hdr, r->Bytes, MmCached, r, &user_va);
	HbHwExit(dev);
	if (!NT_SUCCESS(status)) {
		HbEvRingDetach(File);
		return status;
	}
	HbAutoSubscribe(File);	/* EV_ENABLE, as a first read would */
	RtlZeroMemory(req, sizeof(*req));
	req->records = r->Records;
	req->user_va = (ULONG64)(ULONG_PTR)user_va;
	req->mapped_length = r->Bytes;
	Irp->IoStatus.Information = sizeof(*req);
	return STATUS_SUCCESS;

out_event:
	if (ev)
		ObDereferenceObject(ev);
	return status;
}

/*
 * IOCTL_HILBOX_EV_RING_WAIT: METHOD_BUFFERED in/out struct
 * hilbox_ev_ring_wait.  Releases records up to head (old head <= head <=
 * tail); never waits on Windows (timeout_ms must be 0: wait on the event).
 */
NTSTATUS HbIoctlEvRingWait(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_ev_ring_wait *req = Irp->AssociatedIrp.SystemBuffer;
	PHB_DEVICE dev = File->Dev;
	NTSTATUS status = STATUS_SUCCESS;
	PHB_EV_RING r;
	KIRQL irql;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*req) ||
	    sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*req))
		return STATUS_BUFFER_TOO_SMALL;
	if (req->timeout_ms || req->flags || req->tail || req->dropped ||
	    req->reserved[0] || req->reserved[1])
		return STATUS_INVALID_PARAMETER;

	KeAcquireSpinLock(&dev->DeliverLock, &irql);
	r = File->EvRing;
	if (!r) {
		status = STATUS_INVALID_PARAMETER;	/* no ring on this file */
	} else if (req->head < r->Head || req->head > r->Tail) {
		status = STATUS_INVALID_PARAMETER;	/* nothing changes */
	} else {
		r->Head = req->head;
		*(volatile ULONG64 *)&r->Hdr->head = r->Head;
		req->tail = r->Tail;
		req->dropped = r->Dropped;
	}
	if (NT_SUCCESS(status) && dev->EvDead)
		status = STATUS_NO_SUCH_DEVICE;
	else if (NT_SUCCESS(status) && dev->EvLinkDown)
		status = STATUS_IO_DEVICE_ERROR;
	KeReleaseSpinLock(&dev->DeliverLock, irql);
	if (NT_SUCCESS(status))
		Irp->IoStatus.Information = sizeof(*req);
	return status;
}
