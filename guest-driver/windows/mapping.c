// SPDX-License-Identifier: MIT
/*
 * mapping.c - zero-copy, read-only views of BAR2 in user processes.
 *
 * The problem (shared/seeds zero-copy thread): a view created with
 * MmMapLockedPagesSpecifyCache(UserMode) belongs to the address space of the
 * process that was current when it was created, and must be unmapped in
 * that same address space - never in whatever process happens to run the
 * code that wants it gone, and never twice.  A file handle, however, can be
 * duplicated (DuplicateHandle) or inherited into other processes, the owner
 * can exit while others still hold the handle, and the device can be
 * surprise-removed while views exist.
 *
 * Design:
 *   - IOCTL_HILBOX_MAP_FB is handled in the caller's context: hilbox.sys is
 *     the top of the stack and the INF installs no upper filter, so for a
 *     METHOD_BUFFERED IOCTL the I/O manager calls our dispatch routine in
 *     the thread that called DeviceIoControl (this is what KMDF offers as
 *     EvtIoInCallerContext).  We check it anyway: RequestorMode == UserMode
 *     and IoGetRequestorProcess(Irp) == PsGetCurrentProcess(), at
 *     PASSIVE_LEVEL.
 *   - Each view is an HB_MAPPING recording the owner (EPROCESS, referenced
 *     with ObReferenceObject, so neither the object nor its process id can
 *     be recycled), the user address, and its own MDL built with
 *     MmBuildMdlForNonPagedPool over the kernel's MmMapIoSpaceEx view of BAR2.
 *   - The view is mapped with MdlMappingNoWrite | MdlMappingNoExecute
 *     (Windows 8+): read-only and not executable; VirtualProtect cannot
 *     change that (the VAD is not a private allocation), and a write raises
 *     an access violation in the writer without reaching the device.  Cache
 *     type: MmWriteCombined when BAR2 is prefetchable (fb-mode=direct), else
 *     MmNonCached - the same type as the kernel view (Windows requires all
 *     views of a physical page to agree).
 *   - Exactly one of four paths unmaps a view, whichever wins the
 *     ACTIVE -> UNMAPPING compare-exchange on HB_MAPPING.State:
 *       1. IOCTL_HILBOX_UNMAP_FB, in the owner's context (only the owner
 *          can name its view: process and address must both match);
 *       2. IRP_MJ_CLEANUP of the file that created it, in the context of
 *          whichever process closed the last handle: if that is not the
 *          owner, KeStackAttachProcess(owner) around MmUnmapLockedPages;
 *       3. the process-exit callback (PsSetCreateProcessNotifyRoutine),
 *          which runs in the exiting process's context while its address
 *          space still exists - a view must be gone before the address
 *          space is torn down;
 *       4. stop / surprise removal / removal (PnP thread): attach to each
 *          owner.
 *     A path that loses the race waits on HB_MAPPING.Done until the winner
 *     finished.  This matters for path 3: the exit callback does not return
 *     (and so the owner's address space is not torn down) while another
 *     thread is attached to it and unmapping, which is what makes attaching
 *     to an owner safe: an ACTIVE view implies the owner's exit callback has
 *     not finished, so its address space is intact.  No lock is held while
 *     waiting or unmapping.
 *   - Views die with the file object's last handle (like KMDF's
 *     EvtFileCleanup), unlike Linux where a mapping outlives close().
 *   - Without the process callback (registration failed) views are refused
 *     (STATUS_NOT_SUPPORTED): without path 3 an exiting owner would leak.
 *
 * Ownership: HB_MAPPING and its MDL are allocated here and freed by the last
 * HbMapRelease; the user VA belongs to the owner process but is released
 * only by MmUnmapLockedPages here (user code cannot VirtualFree it).
 */
#include "hilbox_drv.h"

typedef BOOLEAN (*HB_MAP_MATCH)(PHB_MAPPING Map, PVOID Context);

static void HbMapRef(PHB_MAPPING Map)
{
	InterlockedIncrement(&Map->RefCount);
}

static void HbMapRelease(PHB_MAPPING Map)
{
	if (InterlockedDecrement(&Map->RefCount))
		return;
	ASSERT(Map->State != HB_MAP_ACTIVE);
	IoFreeMdl(Map->Mdl);
	if (Map->EvRing)
		HbEvRingRelease(Map->EvRing);	/* the ring outlives its views */
	ObDereferenceObject(Map->Process);
	ExFreePoolWithTag(Map, HB_POOL_TAG);
}

/* PASSIVE_LEVEL.  Removes the view from the owner's address space. */
static void HbUnmapInOwner(PHB_MAPPING Map)
{
	KAPC_STATE apc;

	if (PsGetCurrentProcess() == Map->Process) {
		MmUnmapLockedPages(Map->UserVa, Map->Mdl);
		return;
	}
	KeStackAttachProcess((PKPROCESS)Map->Process, &apc);
	MmUnmapLockedPages(Map->UserVa, Map->Mdl);
	KeUnstackDetachProcess(&apc);
}

/*
 * Unmaps Map unless another path already does; returns once it is DONE and
 * unlinked either way.  The caller holds a temporary reference.
 */
static void HbRevoke(PHB_MAPPING Map)
{
	KIRQL irql;

	if (InterlockedCompareExchange(&Map->State, HB_MAP_UNMAPPING,
				       HB_MAP_ACTIVE) != HB_MAP_ACTIVE) {
		KeWaitForSingleObject(&Map->Done, Executive, KernelMode, FALSE, NULL);
		return;
	}

	HbUnmapInOwner(Map);

	KeAcquireSpinLock(&HbGlobal.MapLock, &irql);
	RemoveEntryList(&Map->GlobalLink);
	RemoveEntryList(&Map->FileLink);
	Map->File->MapCount--;
	InterlockedDecrement(&HbGlobal.MapCount);
	InterlockedExchange(&Map->State, HB_MAP_DONE);
	KeReleaseSpinLock(&HbGlobal.MapLock, irql);

	KeSetEvent(&Map->Done, IO_NO_INCREMENT, FALSE);
	HbMapRelease(Map);	/* the lists' reference */
}

static PHB_MAPPING HbFindAndRef(HB_MAP_MATCH Match, PVOID Context)
{
	PHB_MAPPING found = NULL;
	PLIST_ENTRY e;
	KIRQL irql;

	KeAcquireSpinLock(&HbGlobal.MapLock, &irql);
	for (e = HbGlobal.Maps.Flink; e != &HbGlobal.Maps; e = e->Flink) {
		PHB_MAPPING m = CONTAINING_RECORD(e, HB_MAPPING, GlobalLink);

		if (Match(m, Context)) {
			HbMapRef(m);
			found = m;
			break;
		}
	}
	KeReleaseSpinLock(&HbGlobal.MapLock, irql);
	return found;
}

/* Each round removes one matching view from the list: terminates. */
static void HbRevokeMatching(HB_MAP_MATCH Match, PVOID Context)
{
	PHB_MAPPING m;

	while ((m = HbFindAndRef(Match, Context)) != NULL) {
		HbRevoke(m);
		HbMapRelease(m);
	}
}

static BOOLEAN HbMatchFile(PHB_MAPPING Map, PVOID Context)
{
	return Map->File == Context;
}

static BOOLEAN HbMatchDevice(PHB_MAPPING Map, PVOID Context)
{
	return Map->Dev == Context;
}

static BOOLEAN HbMatchProcessId(PHB_MAPPING Map, PVOID Context)
{
	return Map->ProcessId == (HANDLE)Context;
}

typedef struct _HB_UNMAP_MATCH {
	PHB_DEVICE Dev;
	PEPROCESS Process;
	PVOID UserVa;
} HB_UNMAP_MATCH;

static BOOLEAN HbMatchUnmap(PHB_MAPPING Map, PVOID Context)
{
	HB_UNMAP_MATCH *u = Context;

	return Map->Dev == u->Dev && Map->Process == u->Process &&
	       Map->UserVa == u->UserVa && Map->State == HB_MAP_ACTIVE;
}

/* IRP_MJ_CLEANUP of File (any process context). */
void HbRevokeFileMappings(PHB_FILE File)
{
	KIRQL irql;

	KeAcquireSpinLock(&HbGlobal.MapLock, &irql);
	File->MapsClosed = TRUE;	/* an in-flight MAP undoes itself */
	KeReleaseSpinLock(&HbGlobal.MapLock, irql);
	HbRevokeMatching(HbMatchFile, File);
}

/* Stop / surprise removal / removal (PnP thread, System process). */
void HbRevokeDeviceMappings(PHB_DEVICE Dev)
{
	HbRevokeMatching(HbMatchDevice, Dev);
}

ULONG HbDeviceMappingCount(PHB_DEVICE Dev)
{
	PLIST_ENTRY e;
	ULONG n = 0;
	KIRQL irql;

	KeAcquireSpinLock(&HbGlobal.MapLock, &irql);
	for (e = HbGlobal.Maps.Flink; e != &HbGlobal.Maps; e = e->Flink)
		if (CONTAINING_RECORD(e, HB_MAPPING, GlobalLink)->Dev == Dev)
			n++;
	KeReleaseSpinLock(&HbGlobal.MapLock, irql);
	return n;
}

/*
 * Process creation/exit callback, PASSIVE_LEVEL.  On exit it runs in the
 * context of the exiting process's last thread, before its address space is
 * deleted: views still owned by it are unmapped here (directly, since it is
 * the current process; HbUnmapInOwner checks).
 */
VOID NTAPI HbProcessNotify(HANDLE ParentId, HANDLE ProcessId, BOOLEAN Create)
{
	UNREFERENCED_PARAMETER(ParentId);
	if (Create || !InterlockedCompareExchange(&HbGlobal.MapCount, 0, 0))
		return;
	HbRevokeMatching(HbMatchProcessId, (PVOID)ProcessId);
}

/* ------------------------------------------------------------------ */
/* IOCTLs                                                              */

typedef struct _HB_MAP_CALL {
	PMDL Mdl;
	MEMORY_CACHING_TYPE Cache;
	PVOID UserVa;
} HB_MAP_CALL;

/* Runs under HbCallGuarded: UserMode mappings raise on failure. */
static NTSTATUS HbMapGuarded(PVOID Context)
{
	HB_MAP_CALL *c = Context;

	c->UserVa = MmMapLockedPagesSpecifyCache(c->Mdl, UserMode, c->Cache,
		NULL, FALSE,
		NormalPagePriority | MdlMappingNoWrite | MdlMappingNoExecute);
	return c->UserVa ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

BOOLEAN HbInCallerContext(PIRP Irp)
{
	return Irp->RequestorMode == UserMode &&
	       IoGetRequestorProcess(Irp) == PsGetCurrentProcess() &&
	       KeGetCurrentIrql() == PASSIVE_LEVEL;
}

/*
 * One read-only view of KernelVa..+Length (nonpaged: BAR2's kernel view or
 * the event ring) in the calling process, registered so that exactly one of
 * the four paths above unmaps it.  Caller context, PASSIVE_LEVEL (checked
 * by the IOCTLs).  EvRing: the ring the view shows, referenced by the view.
 */
NTSTATUS HbMapView(PHB_FILE File, PVOID KernelVa, SIZE_T Length,
		   MEMORY_CACHING_TYPE Cache, PHB_EV_RING EvRing, PVOID *UserVa)
{
	HB_MAP_CALL call;
	PHB_MAPPING map;
	NTSTATUS status;
	KIRQL irql;

	*UserVa = NULL;
	if (!HbGlobal.NotifyRegistered)
		return STATUS_NOT_SUPPORTED;
	if (Length > MAXULONG - PAGE_SIZE)
		return STATUS_INVALID_PARAMETER;
	if (File->MapCount >= HILBOX_WIN_MAX_MAPS_PER_FILE)
		return STATUS_TOO_MANY_OPENED_FILES;

	map = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(*map), HB_POOL_TAG);
	if (!map)
		return STATUS_INSUFFICIENT_RESOURCES;
	RtlZeroMemory(map, sizeof(*map));
	map->Mdl = IoAllocateMdl(KernelVa, (ULONG)Length, FALSE, FALSE, NULL);
	if (!map->Mdl) {
		ExFreePoolWithTag(map, HB_POOL_TAG);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	/* nonpaged memory or I/O space: the PFN array from the kernel view */
	MmBuildMdlForNonPagedPool(map->Mdl);

	call.Mdl = map->Mdl;
	call.Cache = Cache;
	call.UserVa = NULL;
	status = HbCallGuarded(HbMapGuarded, &call);
	if (!NT_SUCCESS(status) || !call.UserVa) {
		IoFreeMdl(map->Mdl);
		ExFreePoolWithTag(map, HB_POOL_TAG);
		return NT_SUCCESS(status) ? STATUS_INSUFFICIENT_RESOURCES : status;
	}

	map->Dev = File->Dev;
	map->File = File;
	map->Process = PsGetCurrentProcess();
	ObReferenceObject(map->Process);
	map->ProcessId = PsGetCurrentProcessId();
	map->UserVa = call.UserVa;
	map->Length = Length;
	map->State = HB_MAP_ACTIVE;
	map->RefCount = 1;	/* the lists' reference */
	if (EvRing) {
		InterlockedIncrement(&EvRing->RefCount);
		map->EvRing = EvRing;
	}
	KeInitializeEvent(&map->Done, NotificationEvent, FALSE);

	KeAcquireSpinLock(&HbGlobal.MapLock, &irql);
	if (File->MapsClosed || File->MapCount >= HILBOX_WIN_MAX_MAPS_PER_FILE) {
		/* CLEANUP ran meanwhile (or a concurrent MAP won): undo, we
		 * are still in the owner's context */
		KeReleaseSpinLock(&HbGlobal.MapLock, irql);
		status = File->MapsClosed ? STATUS_FILE_CLOSED :
					    STATUS_TOO_MANY_OPENED_FILES;
		MmUnmapLockedPages(map->UserVa, map->Mdl);
		map->State = HB_MAP_DONE;
		HbMapRelease(map);
		return status;
	}
	InsertTailList(&HbGlobal.Maps, &map->GlobalLink);
	InsertTailList(&File->Maps, &map->FileLink);
	File->MapCount++;
	InterlockedIncrement(&HbGlobal.MapCount);
	KeReleaseSpinLock(&HbGlobal.MapLock, irql);
	*UserVa = call.UserVa;
	return STATUS_SUCCESS;
}

/* IOCTL_HILBOX_MAP_FB: METHOD_BUFFERED in/out struct hilbox_win_map. */
NTSTATUS HbIoctlMap(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_win_map *req = Irp->AssociatedIrp.SystemBuffer;
	PHB_DEVICE dev = File->Dev;
	ULONG64 offset, len;
	PVOID user_va;
	NTSTATUS status;
	ULONG i;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*req) ||
	    sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(*req))
		return STATUS_BUFFER_TOO_SMALL;
	if (req->flags || req->cache_type || req->user_va || req->mapped_length)
		return STATUS_INVALID_PARAMETER;
	for (i = 0; i < ARRAYSIZE(req->reserved); i++)
		if (req->reserved[i])
			return STATUS_INVALID_PARAMETER;
	if (!HbGlobal.NotifyRegistered)
		return STATUS_NOT_SUPPORTED;
	if (!HbInCallerContext(Irp))
		return STATUS_INVALID_DEVICE_REQUEST;

	if (!HbHwEnter(dev))
		return HbHwGoneStatus(dev);
	if (InterlockedCompareExchange(&dev->PnpState, 0, 0) != HbStarted) {
		status = STATUS_DEVICE_NOT_READY;
		goto out_hw;
	}
	offset = req->offset;
	if ((offset & (PAGE_SIZE - 1)) || offset >= dev->FbLen) {
		status = STATUS_INVALID_PARAMETER;
		goto out_hw;
	}
	len = req->length ? req->length : dev->FbLen - offset;
	if (len > dev->FbLen - offset) {	/* no overflow: offset < FbLen */
		status = STATUS_INVALID_PARAMETER;
		goto out_hw;
	}
	len = (len + PAGE_SIZE - 1) & ~(ULONG64)(PAGE_SIZE - 1); /* still <= */
	if (len > MAXULONG - PAGE_SIZE) {
		status = STATUS_INVALID_PARAMETER;
		goto out_hw;
	}
	status = HbMapView(File, (PVOID)(dev->Fb + offset), (SIZE_T)len,
			   dev->FbCache, NULL, &user_va);
	if (!NT_SUCCESS(status))
		goto out_hw;

	/* inserted while HwLock is shared: removal will find and revoke it */
	RtlZeroMemory(req, sizeof(*req));
	req->offset = offset;
	req->length = len;
	req->cache_type = dev->FbCache == MmWriteCombined ?
			  HILBOX_WIN_CACHE_WRITE_COMBINED : HILBOX_WIN_CACHE_UNCACHED;
	req->user_va = (ULONG64)(ULONG_PTR)user_va;
	req->mapped_length = len;
	Irp->IoStatus.Information = sizeof(*req);
	status = STATUS_SUCCESS;
out_hw:
	HbHwExit(dev);
	return status;
}

/* IOCTL_HILBOX_UNMAP_FB: METHOD_BUFFERED in struct hilbox_win_unmap. */
NTSTATUS HbIoctlUnmap(PHB_FILE File, PIRP Irp)
{
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	struct hilbox_win_unmap *req = Irp->AssociatedIrp.SystemBuffer;
	HB_UNMAP_MATCH match;
	PHB_MAPPING map;
	ULONG i;

	if (sp->Parameters.DeviceIoControl.InputBufferLength < sizeof(*req))
		return STATUS_BUFFER_TOO_SMALL;
	for (i = 0; i < ARRAYSIZE(req->reserved); i++)
		if (req->reserved[i])
			return STATUS_INVALID_PARAMETER;
	if (!req->user_va)
		return STATUS_INVALID_PARAMETER;
	if (!HbInCallerContext(Irp))
		return STATUS_INVALID_DEVICE_REQUEST;

	/* only the owner can name its view: a duplicated handle in another
	 * process finds nothing */
	match.Dev = File->Dev;
	match.Process = PsGetCurrentProcess();
	match.UserVa = (PVOID)(ULONG_PTR)req->user_va;
	map = HbFindAndRef(HbMatchUnmap, &match);
	if (!map)
		return STATUS_INVALID_PARAMETER;
	HbRevoke(map);
	HbMapRelease(map);
	Irp->IoStatus.Information = 0;
	return STATUS_SUCCESS;
}
