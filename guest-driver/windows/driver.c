// SPDX-License-Identifier: MIT
/*
 * driver.c - DriverEntry, AddDevice, PnP, power and the file-object
 * dispatch routines (create / cleanup / close / read) of hilbox.sys.
 *
 * WDM function driver (FDO) for PCI\VEN_1234&DEV_4842 (qemu-device/SPEC.md).
 * Semantics mirror the Linux reference driver (guest-driver/linux/hilbox.c)
 * and guest-driver/INTERFACE.md; the Windows-specific parts are documented
 * in guest-driver/windows/README.md.
 *
 * Lifetime: the FDO and its extension (HB_DEVICE) live from AddDevice to
 * IRP_MN_REMOVE_DEVICE.  After a surprise removal, open handles keep the FDO
 * (the PnP manager sends REMOVE_DEVICE only after the last handle is
 * closed); every request on them fails with STATUS_NO_SUCH_DEVICE, cleanup
 * and close work.  IO_REMOVE_LOCK counts every IRP in flight, including the
 * pended event requests, so REMOVE_DEVICE waits for all of them.
 */
#include "hilbox_drv.h"

HB_GLOBAL HbGlobal;

static const GUID HbInterfaceGuid = HILBOX_INTERFACE_GUID_INIT;

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD HbUnload;
static DRIVER_ADD_DEVICE HbAddDevice;
static DRIVER_DISPATCH HbDispatchCreate;
static DRIVER_DISPATCH HbDispatchCleanup;
static DRIVER_DISPATCH HbDispatchClose;
static DRIVER_DISPATCH HbDispatchRead;
static DRIVER_DISPATCH HbDispatchPnp;
static DRIVER_DISPATCH HbDispatchPower;
static DRIVER_DISPATCH HbDispatchSystemControl;
static DRIVER_DISPATCH HbDispatchUnsupported;

/* ------------------------------------------------------------------ */
/* helpers                                                             */

NTSTATUS HbCompleteIrp(PIRP Irp, NTSTATUS Status, ULONG_PTR Info)
{
	Irp->IoStatus.Status = Status;
	Irp->IoStatus.Information = Info;
	IoCompleteRequest(Irp, IO_NO_INCREMENT);
	return Status;
}

/* Nanoseconds of the performance counter (QueryPerformanceCounter's clock). */
ULONG64 HbNowNs(void)
{
	LARGE_INTEGER freq;
	LARGE_INTEGER now = KeQueryPerformanceCounter(&freq);
	ULONG64 f = (ULONG64)freq.QuadPart, c = (ULONG64)now.QuadPart;

	if (!f)
		return 0;
	/* split to avoid overflowing c * 1e9 */
	return (c / f) * 1000000000ULL + ((c % f) * 1000000000ULL) / f;
}

/*
 * Enter a PASSIVE_LEVEL section that touches Regs/Fb; FALSE once stopped or
 * removed.  Counterpart of the Linux driver's hb_hw_enter (rw_semaphore):
 * shared ERESOURCE, the stop/removal path takes it exclusive to clear
 * HwUsable, so it waits for every access in flight.
 */
BOOLEAN HbHwEnter(PHB_DEVICE Dev)
{
	KeEnterCriticalRegion();
	ExAcquireResourceSharedLite(&Dev->HwLock, TRUE);
	if (Dev->HwUsable && !Dev->LinkDown)
		return TRUE;
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();
	return FALSE;
}

void HbHwExit(PHB_DEVICE Dev)
{
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();
}

static HB_PNP_STATE HbState(PHB_DEVICE Dev)
{
	return (HB_PNP_STATE)InterlockedCompareExchange(&Dev->PnpState, 0, 0);
}

static void HbSetState(PHB_DEVICE Dev, HB_PNP_STATE State)
{
	InterlockedExchange(&Dev->PnpState, (LONG)State);
}

/* Reads one REG_DWORD of <service>\Parameters; keeps *Value when absent. */
static void HbReadParam(HANDLE Key, PCWSTR Name, ULONG *Value)
{
	UCHAR buf[sizeof(KEY_VALUE_PARTIAL_INFORMATION) + sizeof(ULONG)];
	PKEY_VALUE_PARTIAL_INFORMATION kv = (PKEY_VALUE_PARTIAL_INFORMATION)buf;
	UNICODE_STRING name;
	ULONG len;

	RtlInitUnicodeString(&name, Name);
	if (NT_SUCCESS(ZwQueryValueKey(Key, &name, KeyValuePartialInformation,
				       kv, sizeof(buf), &len)) &&
	    kv->Type == REG_DWORD && kv->DataLength == sizeof(ULONG))
		RtlCopyMemory(Value, kv->Data, sizeof(ULONG));
}

static void HbReadParameters(PUNICODE_STRING RegistryPath)
{
	OBJECT_ATTRIBUTES oa;
	UNICODE_STRING sub;
	HANDLE svc, params;

	HbGlobal.RingSize = HB_RING_DEFAULT;
	HbGlobal.CopyRetries = HB_COPY_RETRIES_DEFAULT;

	InitializeObjectAttributes(&oa, RegistryPath,
				   OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
				   NULL, NULL);
	if (!NT_SUCCESS(ZwOpenKey(&svc, KEY_READ, &oa)))
		return;
	RtlInitUnicodeString(&sub, L"Parameters");
	InitializeObjectAttributes(&oa, &sub,
				   OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
				   svc, NULL);
	if (NT_SUCCESS(ZwOpenKey(&params, KEY_READ, &oa))) {
		HbReadParam(params, L"RingSize", &HbGlobal.RingSize);
		HbReadParam(params, L"CopyRetries", &HbGlobal.CopyRetries);
		HbReadParam(params, L"WatchdogMs", &HbGlobal.WatchdogMs);
		ZwClose(params);
	}
	ZwClose(svc);

	if (HbGlobal.RingSize < HB_RING_MIN || HbGlobal.RingSize > HB_RING_MAX) {
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_WARNING_LEVEL,
			   "hilbox: RingSize %lu out of range 16..1048576, using %u\n",
			   HbGlobal.RingSize, HB_RING_DEFAULT);
		HbGlobal.RingSize = HB_RING_DEFAULT;
	}
	if (HbGlobal.CopyRetries > HB_MAX_RETRIES)
		HbGlobal.CopyRetries = HB_MAX_RETRIES;
}

/*
 * Protected DACL D:P(A;;GA;;;SY)(A;;GA;;;BA) on the named FDO.
 *
 * IoCreateDeviceSecure lives in the static library wdmsec.lib, which
 * MinGW-w64 does not ship (only <wdmsec.h>).  We therefore create the device
 * with IoCreateDevice + FILE_DEVICE_SECURE_OPEN and set the same descriptor
 * ourselves through documented exports, before DO_DEVICE_INITIALIZING is
 * cleared (nobody can open the device earlier).  hilbox.inf sets the same
 * SDDL with the Security registry value, which the PnP manager applies to
 * the whole stack (PDO included, which matters for opens through the device
 * interface).  FILE_DEVICE_SECURE_OPEN makes the ACL apply to opens of
 * "\Device\HilboxN\anything" too.
 */
static NTSTATUS HbApplySecurity(PDEVICE_OBJECT Fdo)
{
	SECURITY_DESCRIPTOR sd;
	PSID sy = SeExports->SeLocalSystemSid;
	PSID ba = SeExports->SeAliasAdminsSid;
	ULONG aclLen;
	PACL acl;
	HANDLE h;
	NTSTATUS status;

	aclLen = sizeof(ACL) +
		 2 * (ULONG)(sizeof(ACCESS_ALLOWED_ACE) - sizeof(ULONG)) +
		 RtlLengthSid(sy) + RtlLengthSid(ba);
	/* ownership: acl is ours, freed below; the object manager copies it */
	acl = ExAllocatePoolWithTag(PagedPool, aclLen, HB_POOL_TAG);
	if (!acl)
		return STATUS_INSUFFICIENT_RESOURCES;

	status = RtlCreateAcl(acl, aclLen, ACL_REVISION);
	if (NT_SUCCESS(status))
		status = RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, sy);
	if (NT_SUCCESS(status))
		status = RtlAddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, ba);
	if (NT_SUCCESS(status))
		status = RtlCreateSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
	if (NT_SUCCESS(status))
		status = RtlSetDaclSecurityDescriptor(&sd, TRUE, acl, FALSE);
	if (NT_SUCCESS(status)) {
		/* a handle to the device *object*: no IRP_MJ_CREATE is sent */
		status = ObOpenObjectByPointer(Fdo, OBJ_KERNEL_HANDLE, NULL,
					       WRITE_DAC, NULL, KernelMode, &h);
		if (NT_SUCCESS(status)) {
			status = ZwSetSecurityObject(h,
				DACL_SECURITY_INFORMATION |
				PROTECTED_DACL_SECURITY_INFORMATION, &sd);
			ZwClose(h);
		}
	}
	ExFreePoolWithTag(acl, HB_POOL_TAG);
	return status;
}

/* ------------------------------------------------------------------ */
/* DriverEntry / unload                                                */

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
	NTSTATUS status;
	ULONG i;

	HbGlobal.Driver = DriverObject;
	KeInitializeSpinLock(&HbGlobal.Lock);
	KeInitializeSpinLock(&HbGlobal.MapLock);
	InitializeListHead(&HbGlobal.Maps);
	HbReadParameters(RegistryPath);

	/*
	 * Process-exit callback: the only hook that runs in the context of a
	 * process that exits while it still has a view of BAR2 (mapping.c,
	 * README "Zero copy").  The classic PsSetCreateProcessNotifyRoutine is
	 * used: the exit notification in the exiting process's context is all
	 * the driver needs, and the classic routine puts no requirement on the
	 * image.  PsSetCreateProcessNotifyRoutineEx would fail here with
	 * STATUS_ACCESS_DENIED: it requires the image containing the callback
	 * to have IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY (MSVC link
	 * /INTEGRITYCHECK, GNU ld --forceinteg), and this image does not - the
	 * Makefile's LDFLAGS do not pass --forceinteg and scripts/
	 * build-windows.mjs adds no linker flag (test/windows/
	 * driver-source.test.ts checks the bit is clear).  Without the callback
	 * the driver still loads, but refuses IOCTL_HILBOX_MAP_FB.
	 */
	status = PsSetCreateProcessNotifyRoutine(HbProcessNotify, FALSE);
	if (NT_SUCCESS(status))
		HbGlobal.NotifyRegistered = TRUE;
	else
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
			   "hilbox: process notify routine unavailable (%08lx): mapping disabled\n",
			   (ULONG)status);

	for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
		DriverObject->MajorFunction[i] = HbDispatchUnsupported;
	DriverObject->MajorFunction[IRP_MJ_CREATE] = HbDispatchCreate;
	DriverObject->MajorFunction[IRP_MJ_CLEANUP] = HbDispatchCleanup;
	DriverObject->MajorFunction[IRP_MJ_CLOSE] = HbDispatchClose;
	DriverObject->MajorFunction[IRP_MJ_READ] = HbDispatchRead;
	DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = HbDispatchDeviceControl;
	DriverObject->MajorFunction[IRP_MJ_PNP] = HbDispatchPnp;
	DriverObject->MajorFunction[IRP_MJ_POWER] = HbDispatchPower;
	DriverObject->MajorFunction[IRP_MJ_SYSTEM_CONTROL] = HbDispatchSystemControl;
	DriverObject->DriverExtension->AddDevice = HbAddDevice;
	DriverObject->DriverUnload = HbUnload;
	return STATUS_SUCCESS;
}

static VOID HbUnload(PDRIVER_OBJECT DriverObject)
{
	UNREFERENCED_PARAMETER(DriverObject);
	/* every FDO is gone (REMOVE_DEVICE), hence every mapping is gone */
	if (HbGlobal.NotifyRegistered)
		PsSetCreateProcessNotifyRoutine(HbProcessNotify, TRUE);
}

/* ------------------------------------------------------------------ */
/* AddDevice                                                           */

static ULONG HbAllocInstance(void)
{
	KIRQL irql;
	ULONG i;

	KeAcquireSpinLock(&HbGlobal.Lock, &irql);
	for (i = 0; i < HB_MAX_INSTANCES; i++) {
		if (!(HbGlobal.InstanceBits & (1ULL << i))) {
			HbGlobal.InstanceBits |= 1ULL << i;
			break;
		}
	}
	KeReleaseSpinLock(&HbGlobal.Lock, irql);
	return i;
}

static void HbFreeInstance(ULONG Instance)
{
	KIRQL irql;

	if (Instance >= HB_MAX_INSTANCES)
		return;
	KeAcquireSpinLock(&HbGlobal.Lock, &irql);
	HbGlobal.InstanceBits &= ~(1ULL << Instance);
	KeReleaseSpinLock(&HbGlobal.Lock, irql);
}

/* Swap \Device\Hilbox / \DosDevices\Hilbox + decimal N into Buf. */
static void HbMakeName(PUNICODE_STRING Out, PWCHAR Buf, USHORT BufBytes,
		       PCWSTR Prefix, ULONG N)
{
	Out->Buffer = Buf;
	Out->Length = 0;
	Out->MaximumLength = BufBytes;
	RtlAppendUnicodeToString(Out, Prefix);
	{
		UNICODE_STRING num;
		WCHAR nb[12];

		num.Buffer = nb;
		num.Length = 0;
		num.MaximumLength = sizeof(nb);
		RtlIntegerToUnicodeString(N, 10, &num);
		RtlAppendUnicodeStringToString(Out, &num);
	}
}

static NTSTATUS HbAddDevice(PDRIVER_OBJECT DriverObject, PDEVICE_OBJECT Pdo)
{
	PDEVICE_OBJECT fdo = NULL;
	PHB_DEVICE dev;
	UNICODE_STRING ntName;
	WCHAR ntBuf[40];
	ULONG instance;
	NTSTATUS status;

	instance = HbAllocInstance();
	if (instance >= HB_MAX_INSTANCES)
		return STATUS_INSUFFICIENT_RESOURCES;
	HbMakeName(&ntName, ntBuf, sizeof(ntBuf), HILBOX_NT_DEVICE_PREFIX, instance);

	status = IoCreateDevice(DriverObject, sizeof(HB_DEVICE), &ntName,
				HILBOX_DEVICE_TYPE, FILE_DEVICE_SECURE_OPEN,
				FALSE, &fdo);
	if (!NT_SUCCESS(status)) {
		HbFreeInstance(instance);
		return status;
	}
	dev = fdo->DeviceExtension;
	RtlZeroMemory(dev, sizeof(*dev));
	dev->Self = fdo;
	dev->Pdo = Pdo;
	dev->Instance = instance;
	dev->CopyRetries = HbGlobal.CopyRetries;
	dev->PnpState = HbNotStarted;
	IoInitializeRemoveLock(&dev->RemoveLock, HB_POOL_TAG, 0, 0);
	ExInitializeResourceLite(&dev->HwLock);
	dev->HwLockInitialized = TRUE;
	KeInitializeMutex(&dev->SubLock, 0);
	KeInitializeDpc(&dev->Dpc, HbDpc, dev);
	HbEventsInit(dev);
	status = HbWatchdogInit(dev);
	if (!NT_SUCCESS(status))
		goto err;

	/* ownership: the ring belongs to the FDO, freed at REMOVE_DEVICE */
	dev->RingCap = HbGlobal.RingSize;
	dev->Ring = ExAllocatePoolWithTag(NonPagedPoolNx,
					  (SIZE_T)dev->RingCap * sizeof(struct hilbox_event),
					  HB_POOL_TAG);
	if (!dev->Ring) {
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto err;
	}

	status = HbApplySecurity(fdo);
	if (!NT_SUCCESS(status))
		goto err;

	status = IoRegisterDeviceInterface(Pdo, &HbInterfaceGuid, NULL,
					   &dev->InterfaceName);
	if (!NT_SUCCESS(status))
		goto err;

	HbMakeName(&dev->DosName, dev->DosNameBuf, sizeof(dev->DosNameBuf),
		   HILBOX_DOS_DEVICE_PREFIX, instance);
	status = IoCreateSymbolicLink(&dev->DosName, &ntName);
	if (!NT_SUCCESS(status))
		goto err;
	dev->DosLinkCreated = TRUE;

	dev->Lower = IoAttachDeviceToDeviceStack(fdo, Pdo);
	if (!dev->Lower) {
		status = STATUS_NO_SUCH_DEVICE;
		goto err;
	}

	/* buffered I/O: ReadFile gets a nonpaged system buffer we fill at DPC */
	fdo->Flags |= DO_BUFFERED_IO | DO_POWER_PAGABLE;
	fdo->Flags &= ~DO_DEVICE_INITIALIZING;
	return STATUS_SUCCESS;

err:
	if (dev->DosLinkCreated)
		IoDeleteSymbolicLink(&dev->DosName);
	if (dev->InterfaceName.Buffer)
		RtlFreeUnicodeString(&dev->InterfaceName);
	if (dev->Ring)
		ExFreePoolWithTag(dev->Ring, HB_POOL_TAG);
	ExDeleteResourceLite(&dev->HwLock);
	IoDeleteDevice(fdo);
	HbFreeInstance(instance);
	return status;
}

/* ------------------------------------------------------------------ */
/* hardware start / release                                            */

static NTSTATUS HbReadInfo(PHB_DEVICE Dev)
{
	struct hilbox_info *info = &Dev->Info;
	ULONG id = HbRd32(Dev, HB_REG_ID);
	ULONG version = HbRd32(Dev, HB_REG_VERSION);

	if (id != HB_ID_MAGIC ||
	    version >> HB_VERSION_MAJOR_SHIFT != HB_VERSION_MAJOR) {
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
			   "hilbox: unsupported device: ID %08lx VERSION %08lx\n",
			   id, version);
		return STATUS_DEVICE_CONFIGURATION_ERROR;
	}
	RtlZeroMemory(info, sizeof(*info));
	info->abi_version = HILBOX_ABI_VERSION;
	info->dev_version = version;
	info->caps = HbRd32(Dev, HB_REG_CAPS);
	info->width = HbRd32(Dev, HB_REG_WIDTH);
	info->height = HbRd32(Dev, HB_REG_HEIGHT);
	info->stride = HbRd32(Dev, HB_REG_STRIDE);
	info->format = HbRd32(Dev, HB_REG_FORMAT);
	info->fps = HbRd32(Dev, HB_REG_FPS);
	info->fb_bytes = HbRd32(Dev, HB_REG_FB_BYTES);
	info->fb_mode = HbRd32(Dev, HB_REG_FB_MODE);
	info->mmio_latency_ns = HbRd32(Dev, HB_REG_MMIO_LATENCY);
	info->ev_fifo_depth = HbRd32(Dev, HB_REG_EV_FIFO_DEPTH);
	info->ev_rate_hz = HbRd32(Dev, HB_REG_EV_RATE);
	info->ev_bundle = HbRd32(Dev, HB_REG_EV_BUNDLE);
	info->bar2_size = Dev->FbLen;
	info->ring_size = Dev->RingCap;
	info->instance = Dev->Instance;
	info->event_size = sizeof(struct hilbox_event);
	info->max_read_records = HB_MAX_READ_RECORDS;
	/* no HILBOX_DRV_NOWAIT: Windows callers use overlapped I/O instead */
	info->drv_flags = HILBOX_DRV_EV_RING;	/* evring.c */
	if (Dev->FbCache == MmWriteCombined)
		info->drv_flags |= HILBOX_DRV_FB_WC;

	if (!info->width || !info->height ||
	    info->stride < 3ULL * info->width ||
	    (ULONG64)info->stride * info->height != info->fb_bytes ||
	    info->fb_bytes > Dev->FbLen || !info->ev_fifo_depth) {
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
			   "hilbox: inconsistent geometry %lux%lu stride %lu fb %lu\n",
			   info->width, info->height, info->stride, info->fb_bytes);
		return STATUS_DEVICE_CONFIGURATION_ERROR;
	}
	return STATUS_SUCCESS;
}

/*
 * Kernel views of the BARs: MmMapIoSpaceEx (Windows 10+, imported from
 * ntoskrnl.exe; hilbox.inf installs on build 16299 and later only), which
 * takes a page protection (never executable here) instead of MmMapIoSpace's
 * caching type.  BAR0 read/write non-cached; BAR2 read-only, with the cache
 * type user views must share (mapping.c).  MmUnmapIoSpace undoes both.
 */
static PVOID HbMapRegs(PHYSICAL_ADDRESS Phys)
{
	return MmMapIoSpaceEx(Phys, HB_REGS_SIZE, PAGE_READWRITE | PAGE_NOCACHE);
}

static PVOID HbMapFb(PHYSICAL_ADDRESS Phys, SIZE_T Len, MEMORY_CACHING_TYPE Cache)
{
	return MmMapIoSpaceEx(Phys, Len, PAGE_READONLY |
			      (Cache == MmWriteCombined ? PAGE_WRITECOMBINE : PAGE_NOCACHE));
}

static void HbUnmapBars(PHB_DEVICE Dev)
{
	if (Dev->Fb) {
		MmUnmapIoSpace((PVOID)Dev->Fb, Dev->FbLen);
		Dev->Fb = NULL;
	}
	if (Dev->Regs) {
		MmUnmapIoSpace((PVOID)Dev->Regs, HB_REGS_SIZE);
		Dev->Regs = NULL;
	}
}

/*
 * Takes the interrupt away: STOP_DEVICE, SURPRISE_REMOVAL, REMOVE_DEVICE
 * (through HbReleaseHardware) and a failed START_DEVICE.  PASSIVE_LEVEL,
 * idempotent.  DeviceGone: surprise removal (mask only a device that still
 * answers).
 *
 * INVARIANT - the order of these steps is the correctness argument; do not
 * reorder them:
 *   1. HbRetireInterrupts: IntUsable = FALSE and INT_MASK = 0 (IntMask = 0)
 *      under the interrupt spin lock, while the interrupt is still
 *      connected (the IoDisconnectInterrupt documentation: stop the device
 *      interrupting before disconnecting; a shared level-triggered line
 *      would otherwise keep firing).  Serialised with the ISR, so from here
 *      on no ISR claims or queues the DPC, and no DPC unmasks.
 *   2. KeFlushQueuedDpcs: every DPC queued before it - hence every DPC
 *      ever queued - has run to completion, including one that read
 *      IntUsable before step 1 and is in KeSynchronizeExecution(IntObject).
 *   3. IoDisconnectInterruptEx: the interrupt object is freed; no ISR runs
 *      after it returns.  Only now is IntObject dead.
 *   4. KeFlushQueuedDpcs again: nothing can have been queued since step 1;
 *      this keeps "no DPC of ours runs or is queued" independent of that
 *      argument before the caller unmaps BAR0 (HbUnmapBars).
 * The DPC touches IntObject only while it reads IntUsable TRUE, i.e. only
 * before step 2 returns.  Disconnecting first (the old order) let a running
 * DPC call KeSynchronizeExecution on the freed interrupt object.
 * Regression guard: test/windows/driver-source.test.ts.
 */
static void HbDisconnectInterrupt(PHB_DEVICE Dev, BOOLEAN DeviceGone)
{
	IO_DISCONNECT_INTERRUPT_PARAMETERS dp;

	if (!Dev->IntConnection)
		return;
	HbRetireInterrupts(Dev, DeviceGone);	/* 1 */
	KeFlushQueuedDpcs();			/* 2 */
	RtlZeroMemory(&dp, sizeof(dp));
	dp.Version = Dev->IntVersion;
	dp.ConnectionContext.Generic = Dev->IntConnection;
	IoDisconnectInterruptEx(&dp);		/* 3 */
	KeFlushQueuedDpcs();			/* 4 */
	Dev->IntConnection = NULL;
	Dev->IntObject = NULL;
}

/*
 * IRP_MN_START_DEVICE, after the bus driver started the device.  BAR0 and
 * BAR2 are the first and second CmResourceTypeMemory descriptors (PCI lists
 * them in BAR order); which one is BAR0 is confirmed by the ID register,
 * BAR2 never reads "HBOX" (SPEC 4.2: its first two bytes are equal).
 */
static NTSTATUS HbStartHardware(PHB_DEVICE Dev, PCM_RESOURCE_LIST Translated)
{
	PCM_PARTIAL_RESOURCE_DESCRIPTOR mem[2] = { NULL, NULL };
	PCM_PARTIAL_RESOURCE_LIST list;
	IO_CONNECT_INTERRUPT_PARAMETERS cp;
	BOOLEAN haveInt = FALSE, intIsMsi = FALSE;
	ULONG i, nmem = 0;
	NTSTATUS status;

	if (!Translated || Translated->Count < 1)
		return STATUS_DEVICE_CONFIGURATION_ERROR;
	list = &Translated->List[0].PartialResourceList;
	for (i = 0; i < list->Count; i++) {
		PCM_PARTIAL_RESOURCE_DESCRIPTOR d = &list->PartialDescriptors[i];

		if (d->Type == CmResourceTypeMemory && nmem < 2)
			mem[nmem++] = d;
		else if (d->Type == CmResourceTypeInterrupt) {
			haveInt = TRUE;
			intIsMsi = !!(d->Flags & CM_RESOURCE_INTERRUPT_MESSAGE);
		}
	}
	if (nmem < 2 || !haveInt) {
		DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL,
			   "hilbox: need 2 memory BARs and an interrupt (got %lu/%u)\n",
			   nmem, haveInt);
		return STATUS_DEVICE_CONFIGURATION_ERROR;
	}

	/* which one is the register block? */
	for (i = 0; i < 2; i++) {
		PCM_PARTIAL_RESOURCE_DESCRIPTOR r = mem[i], f = mem[1 - i];
		volatile UCHAR *regs;

		if (r->u.Memory.Length < HB_REGS_SIZE)
			continue;
		regs = HbMapRegs(r->u.Memory.Start);
		if (!regs)
			return STATUS_INSUFFICIENT_RESOURCES;
		if (*(volatile ULONG *)(regs + HB_REG_ID) == HB_ID_MAGIC) {
			Dev->Regs = regs;
			Dev->FbPhys = f->u.Memory.Start;
			Dev->FbLen = f->u.Memory.Length;
			Dev->FbCache = (f->Flags & CM_RESOURCE_MEMORY_PREFETCHABLE) ?
				       MmWriteCombined : MmNonCached;
			break;
		}
		MmUnmapIoSpace((PVOID)regs, HB_REGS_SIZE);
	}
	if (!Dev->Regs)
		return STATUS_DEVICE_CONFIGURATION_ERROR;
	if (Dev->FbLen < PAGE_SIZE || (Dev->FbPhys.QuadPart & (PAGE_SIZE - 1)) ||
	    (Dev->FbLen & (PAGE_SIZE - 1))) {
		status = STATUS_DEVICE_CONFIGURATION_ERROR;
		goto err;
	}
	Dev->Fb = HbMapFb(Dev->FbPhys, Dev->FbLen, Dev->FbCache);
	if (!Dev->Fb) {
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto err;
	}

	status = HbReadInfo(Dev);
	if (!NT_SUCCESS(status))
		goto err;

	/* quiesce: no events, no interrupts, nothing pending */
	HbWr32(Dev, HB_REG_CONTROL, 0);
	HbWr32(Dev, HB_REG_INT_MASK, 0);
	HbWr32(Dev, HB_REG_INT_ACK, HB_INT_ALL);
	/* no ISR yet: plain writes; the ISR claims nothing until unmasked */
	Dev->IntMask = 0;
	Dev->IntUsable = FALSE;

	/*
	 * MSI when the PnP manager assigned a message interrupt (hilbox.inf
	 * sets MSISupported), the line-based INTx otherwise: the documented
	 * CONNECT_MESSAGE_BASED + FallBackServiceRoutine pattern.  On return
	 * cp.Version says which one was connected.
	 */
	RtlZeroMemory(&cp, sizeof(cp));
	cp.Version = CONNECT_MESSAGE_BASED;
	cp.MessageBased.PhysicalDeviceObject = Dev->Pdo;
	cp.MessageBased.ConnectionContext.Generic = &Dev->IntConnection;
	cp.MessageBased.MessageServiceRoutine = HbMessageIsr;
	cp.MessageBased.ServiceContext = Dev;
	cp.MessageBased.FallBackServiceRoutine = HbIsr;
	status = IoConnectInterruptEx(&cp);
	if (!NT_SUCCESS(status))
		goto err;
	Dev->IntVersion = cp.Version;
	if (cp.Version == CONNECT_MESSAGE_BASED) {
		PIO_INTERRUPT_MESSAGE_INFO mi = Dev->IntConnection;

		Dev->IntObject = mi->MessageInfo[0].InterruptObject;
		Dev->Info.drv_flags |= HILBOX_DRV_MSI;
	} else {
		Dev->IntObject = Dev->IntConnection;
	}

	/* HwUsable before unmasking: the DPC only unmasks a usable device */
	KeEnterCriticalRegion();
	ExAcquireResourceExclusiveLite(&Dev->HwLock, TRUE);
	Dev->HwUsable = TRUE;
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();

	/* events flow only while CONTROL.EV_ENABLE; the mask stays on.
	 * IntUsable + INT_MASK under the interrupt lock (IntObject is set). */
	HbUnmaskInterrupts(Dev);
	HbRestoreEventEnable(Dev);	/* subscribers survive a STOP/START */
	HbWatchdogStart(Dev);		/* link and lost-interrupt checks */

	DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL,
		   "hilbox%lu: %lux%lu stride %lu %lu fps, BAR2 %Iu KiB%s, %s (%s resource)\n",
		   Dev->Instance, Dev->Info.width, Dev->Info.height,
		   Dev->Info.stride, Dev->Info.fps, Dev->FbLen >> 10,
		   Dev->FbCache == MmWriteCombined ? " wc" : "",
		   cp.Version == CONNECT_MESSAGE_BASED ? "MSI" : "INTx",
		   intIsMsi ? "message" : "line");
	return STATUS_SUCCESS;

err:
	HbDisconnectInterrupt(Dev, FALSE);
	HbUnmapBars(Dev);
	return status;
}

/*
 * Stop touching the hardware (STOP_DEVICE, SURPRISE_REMOVAL, REMOVE_DEVICE).
 * Order: (1) no PASSIVE path uses the mappings any more (HwLock exclusive),
 * (2) every user view is revoked in its owning process, (3) the device is
 * masked, no ISR/DPC runs or is queued, the interrupt is disconnected
 * (HbDisconnectInterrupt), (4) the kernel mappings go.  Idempotent.
 */
static void HbReleaseHardware(PHB_DEVICE Dev, BOOLEAN DeviceGone)
{
	BOOLEAN wasUsable;

	/* first: its work item takes HwLock and revokes views itself */
	HbWatchdogStop(Dev);
	KeEnterCriticalRegion();
	ExAcquireResourceExclusiveLite(&Dev->HwLock, TRUE);
	wasUsable = Dev->HwUsable;
	Dev->HwUsable = FALSE;
	if (wasUsable && !DeviceGone)
		HbWr32(Dev, HB_REG_CONTROL, 0);
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();
	/* from here the DPC's unmask (HbSyncUnmask) sees !HwUsable */

	HbRevokeDeviceMappings(Dev);
	HbDisconnectInterrupt(Dev, DeviceGone);	/* masks first, see there */
	HbUnmapBars(Dev);
}

/* ------------------------------------------------------------------ */
/* PnP                                                                 */

static NTSTATUS HbSyncCompletion(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Ctx)
{
	UNREFERENCED_PARAMETER(DeviceObject);
	UNREFERENCED_PARAMETER(Irp);
	KeSetEvent((PKEVENT)Ctx, IO_NO_INCREMENT, FALSE);
	return STATUS_MORE_PROCESSING_REQUIRED;	/* we complete it again */
}

/* Sends the IRP down and waits for the bus driver (PASSIVE_LEVEL). */
static NTSTATUS HbForwardAndWait(PHB_DEVICE Dev, PIRP Irp)
{
	KEVENT ev;
	NTSTATUS status;

	KeInitializeEvent(&ev, NotificationEvent, FALSE);
	IoCopyCurrentIrpStackLocationToNext(Irp);
	IoSetCompletionRoutine(Irp, HbSyncCompletion, &ev, TRUE, TRUE, TRUE);
	status = IoCallDriver(Dev->Lower, Irp);
	if (status == STATUS_PENDING) {
		KeWaitForSingleObject(&ev, Executive, KernelMode, FALSE, NULL);
		status = Irp->IoStatus.Status;
	}
	return status;
}

static NTSTATUS HbPassDown(PHB_DEVICE Dev, PIRP Irp)
{
	NTSTATUS status;

	IoSkipCurrentIrpStackLocation(Irp);
	status = IoCallDriver(Dev->Lower, Irp);
	IoReleaseRemoveLock(&Dev->RemoveLock, Irp);
	return status;
}

static NTSTATUS HbDispatchPnp(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	NTSTATUS status;

	status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);
	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);

	switch (sp->MinorFunction) {
	case IRP_MN_START_DEVICE:
		status = HbForwardAndWait(dev, Irp);
		if (NT_SUCCESS(status))
			status = HbStartHardware(dev,
				sp->Parameters.StartDevice.AllocatedResourcesTranslated);
		if (NT_SUCCESS(status)) {
			HbSetState(dev, HbStarted);
			IoSetDeviceInterfaceState(&dev->InterfaceName, TRUE);
		}
		HbCompleteIrp(Irp, status, 0);
		IoReleaseRemoveLock(&dev->RemoveLock, Irp);
		return status;

	case IRP_MN_QUERY_STOP_DEVICE:
		/*
		 * A rebalance may move BAR2; user views point at the old
		 * physical pages, so refuse while any exists (they are
		 * revoked only on removal, where the hardware is gone).
		 */
		if (HbDeviceMappingCount(dev)) {
			HbCompleteIrp(Irp, STATUS_DEVICE_BUSY, 0);
			IoReleaseRemoveLock(&dev->RemoveLock, Irp);
			return STATUS_DEVICE_BUSY;
		}
		dev->PrevState = HbState(dev);
		HbSetState(dev, HbStopPending);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_CANCEL_STOP_DEVICE:
		if (HbState(dev) == HbStopPending)
			HbSetState(dev, dev->PrevState);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_STOP_DEVICE:
		/* pended event requests stay queued; they need no hardware */
		HbSetState(dev, HbStopped);
		IoSetDeviceInterfaceState(&dev->InterfaceName, FALSE);
		HbReleaseHardware(dev, FALSE);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_QUERY_REMOVE_DEVICE:
		/*
		 * An orderly removal while a process holds the device (a
		 * handle open, so possibly views and pended requests) is
		 * vetoed here, by the driver's own count, whatever the PnP
		 * manager's own open-handle check does: the user sees the
		 * veto and the device keeps serving; the same removal
		 * succeeds once the last handle is closed.  Dekker order
		 * with HbDispatchCreate (which counts, then checks the
		 * state): the state goes first, then the count is read,
		 * so a CREATE racing with this is seen by one side.
		 */
		dev->PrevState = HbState(dev);
		HbSetState(dev, HbRemovePending);
		if (InterlockedCompareExchange(&dev->OpenFiles, 0, 0) != 0) {
			HbSetState(dev, dev->PrevState);
			HbCompleteIrp(Irp, STATUS_DEVICE_BUSY, 0);
			IoReleaseRemoveLock(&dev->RemoveLock, Irp);
			return STATUS_DEVICE_BUSY;
		}
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_CANCEL_REMOVE_DEVICE:
		if (HbState(dev) == HbRemovePending)
			HbSetState(dev, dev->PrevState);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_SURPRISE_REMOVAL:
		HbSetState(dev, HbSurpriseRemoved);
		IoSetDeviceInterfaceState(&dev->InterfaceName, FALSE);
		/* views revoked in their owners' contexts, reads fail */
		HbReleaseHardware(dev, TRUE);
		HbFailAllRequests(dev, STATUS_NO_SUCH_DEVICE);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		return HbPassDown(dev, Irp);

	case IRP_MN_REMOVE_DEVICE:
		HbSetState(dev, HbRemoved);
		IoSetDeviceInterfaceState(&dev->InterfaceName, FALSE);
		HbReleaseHardware(dev, FALSE);
		HbFailAllRequests(dev, STATUS_NO_SUCH_DEVICE);
		/* wait for every IRP in flight (ours counts once) */
		IoReleaseRemoveLockAndWait(&dev->RemoveLock, Irp);
		Irp->IoStatus.Status = STATUS_SUCCESS;
		IoSkipCurrentIrpStackLocation(Irp);
		status = IoCallDriver(dev->Lower, Irp);
		IoDetachDevice(dev->Lower);
		if (dev->DosLinkCreated)
			IoDeleteSymbolicLink(&dev->DosName);
		RtlFreeUnicodeString(&dev->InterfaceName);
		HbWatchdogFree(dev);
		ExFreePoolWithTag(dev->Ring, HB_POOL_TAG);
		dev->Ring = NULL;
		ExDeleteResourceLite(&dev->HwLock);
		HbFreeInstance(dev->Instance);
		IoDeleteDevice(DeviceObject);
		return status;

	default:
		return HbPassDown(dev, Irp);
	}
}

/* ------------------------------------------------------------------ */
/* power: pass-through (the device keeps no state a D-state change     */
/* loses in QEMU; see README "Not handled")                            */

static NTSTATUS HbDispatchPower(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	NTSTATUS status;

	PoStartNextPowerIrp(Irp);	/* required before Vista, harmless after */
	status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);
	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);
	IoSkipCurrentIrpStackLocation(Irp);
	status = PoCallDriver(dev->Lower, Irp);
	IoReleaseRemoveLock(&dev->RemoveLock, Irp);
	return status;
}

static NTSTATUS HbDispatchSystemControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	NTSTATUS status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);

	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);
	return HbPassDown(dev, Irp);	/* no WMI of our own */
}

static NTSTATUS HbDispatchUnsupported(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	UNREFERENCED_PARAMETER(DeviceObject);
	return HbCompleteIrp(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
}

/* ------------------------------------------------------------------ */
/* file objects                                                        */

static NTSTATUS HbDispatchCreate(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	PFILE_OBJECT fo = sp->FileObject;
	PHB_FILE file;
	NTSTATUS status;

	status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);
	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);

	/* counted first, then the state checked (see QUERY_REMOVE) */
	InterlockedIncrement(&dev->OpenFiles);
	if (HbState(dev) != HbStarted) {
		status = HbState(dev) == HbStopPending || HbState(dev) == HbStopped ?
			 STATUS_DEVICE_NOT_READY : STATUS_DELETE_PENDING;
		goto out;
	}
	/* the device has no namespace: "\\.\Hilbox0\x" is refused */
	if (fo->FileName.Length) {
		status = STATUS_OBJECT_NAME_NOT_FOUND;
		goto out;
	}
	/* like O_WRONLY on Linux: a handle must be able to read */
	if (!(sp->Parameters.Create.SecurityContext->DesiredAccess &
	      (FILE_READ_DATA | GENERIC_READ | GENERIC_ALL | MAXIMUM_ALLOWED))) {
		status = STATUS_INVALID_PARAMETER;
		goto out;
	}

	/* ownership: FsContext belongs to the file object, freed at CLOSE */
	file = ExAllocatePoolWithTag(NonPagedPoolNx, sizeof(*file), HB_POOL_TAG);
	if (!file) {
		status = STATUS_INSUFFICIENT_RESOURCES;
		goto out;
	}
	RtlZeroMemory(file, sizeof(*file));
	file->Dev = dev;
	file->FileObject = fo;
	file->Sub = HbSubAuto;
	InitializeListHead(&file->Maps);
	fo->FsContext = file;
	status = STATUS_SUCCESS;
out:
	if (!NT_SUCCESS(status))
		InterlockedDecrement(&dev->OpenFiles);	/* no CLEANUP follows */
	HbCompleteIrp(Irp, status, 0);
	IoReleaseRemoveLock(&dev->RemoveLock, Irp);
	return status;
}

/*
 * IRP_MJ_CLEANUP: the last *handle* to the file object was closed (in the
 * context of the process that closed it, which need not be the one that
 * opened it: DuplicateHandle, inheritance).  Everything tied to the handle
 * goes here (KMDF: EvtFileCleanup):
 *   - pended event requests of this file complete with STATUS_CANCELLED,
 *   - the file's subscription ends (CONTROL.EV_ENABLE 1->0 on the last),
 *   - every view of BAR2 the file created is unmapped in its owner process
 *     (attaching to it when it is not the current one).
 * Runs after surprise removal too.  The remove lock makes REMOVE_DEVICE
 * wait for a cleanup in progress (it may arrive as the last handle closes).
 */
static NTSTATUS HbDispatchCleanup(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	PFILE_OBJECT fo = IoGetCurrentIrpStackLocation(Irp)->FileObject;
	PHB_FILE file = fo->FsContext;
	NTSTATUS lock = IoAcquireRemoveLock(&dev->RemoveLock, Irp);

	if (file) {
		/* device parts only while REMOVE_DEVICE has not begun (it
		 * fails every request and revokes every view itself) */
		if (NT_SUCCESS(lock)) {
			HbFlushFileRequests(dev, file);
			HbSetSubscription(file, HbSubOff);
		}
		HbRevokeFileMappings(file);
		HbEvRingDetach(file);	/* after its views: no view outlives it */
		InterlockedDecrement(&dev->OpenFiles);	/* the handle is gone */
	}
	HbCompleteIrp(Irp, STATUS_SUCCESS, 0);
	if (NT_SUCCESS(lock))
		IoReleaseRemoveLock(&dev->RemoveLock, Irp);
	return STATUS_SUCCESS;
}

static NTSTATUS HbDispatchClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PFILE_OBJECT fo = IoGetCurrentIrpStackLocation(Irp)->FileObject;
	PHB_FILE file = fo->FsContext;

	UNREFERENCED_PARAMETER(DeviceObject);
	if (file) {
		/* cleanup emptied both; nothing can add to them after it */
		ASSERT(IsListEmpty(&file->Maps));
		fo->FsContext = NULL;
		ExFreePoolWithTag(file, HB_POOL_TAG);
	}
	return HbCompleteIrp(Irp, STATUS_SUCCESS, 0);
}

/* ReadFile: the same inverted-call queue as IOCTL_HILBOX_READ_EVENTS. */
static NTSTATUS HbDispatchRead(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
	PHB_DEVICE dev = DeviceObject->DeviceExtension;
	PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
	NTSTATUS status;

	status = IoAcquireRemoveLock(&dev->RemoveLock, Irp);
	if (!NT_SUCCESS(status))
		return HbCompleteIrp(Irp, status, 0);
	/* HbDispatchReadEvents completes or pends, and releases the lock */
	return HbDispatchReadEvents(dev, Irp, sp->Parameters.Read.Length);
}
