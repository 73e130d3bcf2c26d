// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * watchdog.c - the same policies as the Linux driver's watchdog
 * (guest-driver/INTERFACE.md 5a) for a device that misbehaves:
 *   - link down (ID reads all ones): every view revoked in its owner, every
 *     pended request completed with STATUS_IO_DEVICE_ERROR, hardware IOCTLs
 *     and new requests fail with it until the link returns; then INT_MASK
 *     and CONTROL are written again from the driver's state;
 *   - a lost interrupt (records wait, no ISR since the last tick): the DPC
 *     is queued by the watchdog and drains them;
 *   - an interrupt storm (the DPC found EV_READY and nothing to pop 64 runs
 *     in a row, events.c): left masked, unmasked once a tick from here.
 *
 * Ownership: a periodic KTIMER (WdTimer) whose DPC (WdDpc) queues one
 * IO_WORKITEM (WdWork, allocated at AddDevice, freed at REMOVE) at a time
 * (WdQueued 0 -> 1); the work item runs at PASSIVE_LEVEL, where HwLock,
 * revoking views (attaching to owners) and KeSynchronizeExecution are all
 * allowed, and sets WdIdle when it ends.  HbWatchdogStop (stop, surprise
 * removal, removal) cancels the timer, flushes its DPC and waits for a
 * work item in progress, before the hardware is released.
 */
#include "hilbox_drv.h"

#define HB_WATCHDOG_MS_DEFAULT	100
#define HB_WATCHDOG_MS_MIN	10
#define HB_WATCHDOG_MS_MAX	60000

ULONG HbWatchdogPeriodMs(void)
{
	ULONG ms = HbGlobal.WatchdogMs ? HbGlobal.WatchdogMs : HB_WATCHDOG_MS_DEFAULT;

	return ms < HB_WATCHDOG_MS_MIN ? HB_WATCHDOG_MS_MIN :
	       ms > HB_WATCHDOG_MS_MAX ? HB_WATCHDOG_MS_MAX : ms;
}

/* Status of a hardware access that HbHwEnter refused. */
NTSTATUS HbHwGoneStatus(PHB_DEVICE Dev)
{
	return Dev->LinkDown ? STATUS_IO_DEVICE_ERROR : STATUS_NO_SUCH_DEVICE;
}

static void HbLinkWentDown(PHB_DEVICE Dev)
{
	KeEnterCriticalRegion();
	ExAcquireResourceExclusiveLite(&Dev->HwLock, TRUE);	/* accesses in flight end */
	if (!Dev->HwUsable || Dev->LinkDown ||
	    HbRd32(Dev, HB_REG_ID) != 0xffffffffu) {
		ExReleaseResourceLite(&Dev->HwLock);
		KeLeaveCriticalRegion();
		return;
	}
	Dev->LinkDown = TRUE;
	Dev->LinkDownAt = HbNowNs();
	InterlockedIncrement64(&Dev->LinkDowns);
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();
	DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_WARNING_LEVEL,
		   "hilbox%lu: link down (ID reads all ones)\n", Dev->Instance);

	HbRevokeDeviceMappings(Dev);		/* in each owner's context */
	HbFailPendingForLink(Dev, TRUE);	/* STATUS_IO_DEVICE_ERROR */
}

static void HbLinkCameBack(PHB_DEVICE Dev)
{
	KeEnterCriticalRegion();
	ExAcquireResourceExclusiveLite(&Dev->HwLock, TRUE);
	if (!Dev->HwUsable || !Dev->LinkDown ||
	    HbRd32(Dev, HB_REG_ID) == 0xffffffffu) {
		ExReleaseResourceLite(&Dev->HwLock);
		KeLeaveCriticalRegion();
		return;
	}
	Dev->LinkDown = FALSE;
	ExReleaseResourceLite(&Dev->HwLock);
	KeLeaveCriticalRegion();
	DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_INFO_LEVEL,
		   "hilbox%lu: link up after %I64u ms\n", Dev->Instance,
		   (HbNowNs() - Dev->LinkDownAt) / 1000000ULL);

	HbFailPendingForLink(Dev, FALSE);	/* requests accepted again */
	HbRestoreEventEnable(Dev);		/* CONTROL from the subscribers */
	HbUnmaskInterrupts(Dev);		/* INT_MASK under the interrupt lock */
}

static VOID NTAPI HbWatchdogWork(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
	PHB_DEVICE dev = Context;
	BOOLEAN down, lost, stuck = FALSE;
	LONG64 irqs;

	UNREFERENCED_PARAMETER(DeviceObject);
	KeEnterCriticalRegion();
	ExAcquireResourceSharedLite(&dev->HwLock, TRUE);
	if (!dev->HwUsable) {
		ExReleaseResourceLite(&dev->HwLock);
		KeLeaveCriticalRegion();
		goto out;
	}
	down = dev->LinkDown;
	lost = HbRd32(dev, HB_REG_ID) == 0xffffffffu;
	if (!down && !lost) {
		if (InterlockedExchange(&dev->StormMasked, 0)) {
			stuck = TRUE;			/* unmask once a tick */
		} else if (HbRd32(dev, HB_REG_EV_COUNT)) {
			irqs = InterlockedCompareExchange64(&dev->IrqCount, 0, 0);
			stuck = irqs == dev->WdIrqSeen;	/* no ISR since the last tick */
			dev->WdIrqSeen = irqs;
		}
		if (stuck)	/* an unacknowledged EV_READY would never re-raise MSI */
			HbWr32(dev, HB_REG_INT_ACK, HB_INT_EV_READY);
	}
	ExReleaseResourceLite(&dev->HwLock);
	KeLeaveCriticalRegion();

	if (!down && lost) {
		HbLinkWentDown(dev);
	} else if (down && !lost) {
		HbLinkCameBack(dev);
	} else if (stuck) {
		InterlockedIncrement64(&dev->FallbackDrains);
		KeInsertQueueDpc(&dev->Dpc, NULL, NULL);	/* drains, then unmasks */
	}
out:
	InterlockedExchange(&dev->WdQueued, 0);
	KeSetEvent(&dev->WdIdle, IO_NO_INCREMENT, FALSE);
}

static VOID NTAPI HbWatchdogDpc(PKDPC Dpc, PVOID Context, PVOID Arg1, PVOID Arg2)
{
	PHB_DEVICE dev = Context;

	UNREFERENCED_PARAMETER(Dpc);
	UNREFERENCED_PARAMETER(Arg1);
	UNREFERENCED_PARAMETER(Arg2);
	if (InterlockedCompareExchange(&dev->WdQueued, 1, 0) != 0)
		return;			/* the previous tick's work still runs */
	KeClearEvent(&dev->WdIdle);
	IoQueueWorkItem(dev->WdWork, HbWatchdogWork, DelayedWorkQueue, dev);
}

/* AddDevice: the objects; nothing runs yet. */
NTSTATUS HbWatchdogInit(PHB_DEVICE Dev)
{
	KeInitializeTimerEx(&Dev->WdTimer, NotificationTimer);
	KeInitializeDpc(&Dev->WdDpc, HbWatchdogDpc, Dev);
	KeInitializeEvent(&Dev->WdIdle, NotificationEvent, TRUE);
	Dev->WdWork = IoAllocateWorkItem(Dev->Self);
	return Dev->WdWork ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

/* START_DEVICE, once the hardware is usable. */
void HbWatchdogStart(PHB_DEVICE Dev)
{
	LARGE_INTEGER due;
	ULONG ms = HbWatchdogPeriodMs();

	Dev->LinkDown = FALSE;
	due.QuadPart = -(LONGLONG)ms * 10000;	/* relative, 100 ns units */
	KeSetTimerEx(&Dev->WdTimer, due, (LONG)ms, &Dev->WdDpc);
}

/* Before the hardware goes (stop, surprise removal, removal): idempotent. */
void HbWatchdogStop(PHB_DEVICE Dev)
{
	if (!Dev->WdWork)
		return;
	KeCancelTimer(&Dev->WdTimer);
	KeFlushQueuedDpcs();			/* WdDpc queued no new work after this */
	KeWaitForSingleObject(&Dev->WdIdle, Executive, KernelMode, FALSE, NULL);
}

/* REMOVE_DEVICE, after HbWatchdogStop. */
void HbWatchdogFree(PHB_DEVICE Dev)
{
	if (Dev->WdWork) {
		IoFreeWorkItem(Dev->WdWork);
		Dev->WdWork = NULL;
	}
}
