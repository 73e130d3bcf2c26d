/* SPDX-License-Identifier: MIT */
/*
 * hilbox_drv.h - internal definitions of hilbox.sys, the WDM reference driver
 * for the hilbox-pci device (qemu-device/SPEC.md).
 *
 * Source files:
 *   driver.c   DriverEntry/unload, AddDevice, PnP, power, create/cleanup/close
 *   events.c   ISR, DPC, driver ring, cancel-safe queue (inverted call),
 *              subscription (CONTROL.EV_ENABLE)
 *   mapping.c  zero-copy BAR2 views in user processes and their revocation
 *   ioctl.c    IRP_MJ_DEVICE_CONTROL: INFO/STATS/CLOCK/FRAME_STATE/
 *              SET_EVENTS/COPY_FRAME dispatch
 *   seh.c      the one structured-exception guard (GCC has no __try)
 *
 * Locks, outermost first (never acquired in the other order):
 *   HbGlobal.Lock   (spin)      instance bitmap
 *   Dev->SubLock    (KMUTEX)    subscriber count, per-file subscription
 *   Dev->HwLock     (ERESOURCE) shared: a PASSIVE_LEVEL path touching the
 *                               register/BAR2 mappings; exclusive: stop/removal
 *                               clearing HwUsable.  Never held while user
 *                               memory is touched.
 *   Dev->DeliverLock(spin)      driver ring, event counters, EvDead, file
 *                               Closing flags; serialises "take records /
 *                               pend request" against the DPC's delivery
 *   Dev->CsqLock    (spin)      the cancel-safe queue's list (taken by the
 *                               IoCsq* routines through our lock callbacks)
 *   HbGlobal.MapLock(spin)      every user mapping of every device
 *   interrupt spin lock         (the ISR, KeSynchronizeExecution) every
 *                               INT_MASK write after IoConnectInterruptEx,
 *                               Dev->IntMask (the copy of it) and
 *                               Dev->IntUsable
 */
#ifndef HILBOX_DRV_H
#define HILBOX_DRV_H

#include <ntifs.h>
#include <ntddk.h>

#include "hilbox_ioctl.h"

/* 'LHbx' in pool dumps (little-endian multi-char constant, spelled out) */
#define HB_POOL_TAG		((ULONG)'L' | (ULONG)'H' << 8 | (ULONG)'b' << 16 | (ULONG)'x' << 24)

/*
 * MmMapIoSpaceEx (wdm.h, Windows 10+, exported by ntoskrnl.exe): MinGW-w64's
 * <ddk/wdm.h> does not declare it and its libntoskrnl.a does not list it
 * (the Makefile builds an import library that does).  Same prototype as the
 * WDK's; define HB_HAVE_MM_MAP_IO_SPACE_EX when the headers declare it (an
 * identical redeclaration would be compatible C anyway).
 */
#ifndef HB_HAVE_MM_MAP_IO_SPACE_EX
NTKERNELAPI PVOID NTAPI MmMapIoSpaceEx(PHYSICAL_ADDRESS PhysicalAddress,
				       SIZE_T NumberOfBytes, ULONG Protect);
#endif

/* Windows 8+: map an MDL without write / execute permission. */
#ifndef MdlMappingNoWrite
#define MdlMappingNoWrite	0x80000000
#endif
#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute	0x40000000
#endif

/* device contract: registers, bits, ID/VERSION, PCI IDs (HB_REGS_SIZE, HB_ID_MAGIC, ...) */
#include "hilbox_regs.h"

#define HB_MAX_READ_RECORDS	256	/* records per READ_EVENTS request */
#define HB_DPC_BUDGET		512	/* FIFO records popped per DPC run */
#define HB_COPY_CHUNK		(256 * 1024)
#define HB_ODD_SEQ_WAIT_NS	1000000000ULL
#define HB_MAX_RETRIES		65536
#define HB_MAX_INSTANCES	64

#define HB_RING_DEFAULT		4096
#define HB_STORM_RUNS		64	/* DPC runs with EV_READY, nothing popped */
#define HB_RING_MIN		16
#define HB_RING_MAX		(1u << 20)
#define HB_COPY_RETRIES_DEFAULT	16

typedef enum _HB_PNP_STATE {
	HbNotStarted = 0,
	HbStarted,
	HbStopPending,		/* QUERY_STOP succeeded */
	HbStopped,		/* STOP_DEVICE: resources released */
	HbRemovePending,	/* QUERY_REMOVE succeeded */
	HbSurpriseRemoved,	/* hardware gone, handles may still be open */
	HbRemoved		/* REMOVE_DEVICE in progress */
} HB_PNP_STATE;

/* Subscription of one file object (mirrors the Linux driver's enum hb_sub). */
typedef enum _HB_SUB {
	HbSubAuto = 0,		/* never set: first read subscribes */
	HbSubOn,
	HbSubOff
} HB_SUB;

struct _HB_DEVICE;

/*
 * Per file object state, FileObject->FsContext.  Allocated at IRP_MJ_CREATE,
 * freed at IRP_MJ_CLOSE (after IRP_MJ_CLEANUP revoked its mappings and
 * completed its pended requests; the I/O manager sends CLOSE only when no
 * IRP references the file object any more).
 */
typedef struct _HB_FILE {
	struct _HB_DEVICE *Dev;
	PFILE_OBJECT FileObject;
	HB_SUB Sub;			/* under Dev->SubLock */
	BOOLEAN Closing;		/* CLEANUP began: no new pended request;
					 * under Dev->DeliverLock */
	BOOLEAN MapsClosed;		/* CLEANUP began: no new view; under
					 * HbGlobal.MapLock */
	LIST_ENTRY Maps;		/* HB_MAPPING.FileLink, HbGlobal.MapLock */
	ULONG MapCount;			/* HbGlobal.MapLock */
	volatile LONG64 NextFrame;	/* last copied frame + 1, 0 = none */
	struct _HB_EV_RING *EvRing;	/* the ring this file made (evring.c);
					 * set once under Dev->DeliverLock,
					 * detached at CLEANUP */
} HB_FILE, *PHB_FILE;

/*
 * The shared-memory event ring (evring.c, INTERFACE.md 3b): one nonpaged
 * allocation, header page + slots, written only by the DPC (under
 * DeliverLock) and mapped read-only into processes.  References: the file
 * that made it holds one until its CLEANUP detaches it from the device,
 * each view (HB_MAPPING.EvRing) one; the last frees memory and event.
 */
typedef struct _HB_EV_RING {
	volatile LONG RefCount;
	struct hilbox_ev_ring_hdr *Hdr;	/* page aligned; slots follow */
	struct hilbox_ev_slot *Slots;
	SIZE_T Bytes;
	ULONG Records;
	ULONG64 Tail;			/* DeliverLock: positions written */
	ULONG64 Head;			/* DeliverLock: released by the consumer */
	ULONG64 Dropped;		/* DeliverLock */
	BOOLEAN Stored;			/* DeliverLock: records since the last publish */
	PKEVENT Event;			/* referenced (ObReferenceObjectByHandle), or NULL */
} HB_EV_RING, *PHB_EV_RING;

/* Mapping state machine: exactly one path moves ACTIVE -> UNMAPPING. */
#define HB_MAP_ACTIVE		1
#define HB_MAP_UNMAPPING	2
#define HB_MAP_DONE		3

/*
 * One read-only view of BAR2 in one process.  Owned by the driver; lives in
 * HbGlobal.Maps and in its file's Maps list while not DONE.  References: the
 * lists hold one (dropped by the unmapper), every path working on it holds a
 * temporary one.  The last reference frees the MDL, dereferences the process
 * and frees the struct.
 */
typedef struct _HB_MAPPING {
	LIST_ENTRY GlobalLink;
	LIST_ENTRY FileLink;
	struct _HB_DEVICE *Dev;
	PHB_FILE File;
	PEPROCESS Process;		/* referenced: ObReferenceObject */
	HANDLE ProcessId;		/* cannot be reused while referenced */
	PVOID UserVa;
	PMDL Mdl;			/* describes the BAR2 pages, built from
					 * the kernel's MmMapIoSpaceEx view, or
					 * the event ring's pages */
	PHB_EV_RING EvRing;		/* a view of the event ring: referenced */
	SIZE_T Length;
	volatile LONG State;		/* HB_MAP_* */
	volatile LONG RefCount;
	KEVENT Done;			/* signalled when State becomes DONE */
} HB_MAPPING, *PHB_MAPPING;

/* Device extension of the FDO. */
typedef struct _HB_DEVICE {
	PDEVICE_OBJECT Self;
	PDEVICE_OBJECT Pdo;
	PDEVICE_OBJECT Lower;
	IO_REMOVE_LOCK RemoveLock;	/* every IRP in flight, pended ones too */
	volatile LONG PnpState;		/* HB_PNP_STATE */
	HB_PNP_STATE PrevState;		/* to undo QUERY_STOP / QUERY_REMOVE */
	volatile LONG OpenFiles;	/* file objects between a successful
					 * CREATE and their CLEANUP (a handle
					 * is open; views die at CLEANUP) */
	ULONG Instance;
	UNICODE_STRING InterfaceName;	/* from IoRegisterDeviceInterface */
	UNICODE_STRING DosName;
	WCHAR DosNameBuf[40];
	BOOLEAN DosLinkCreated;

	/* hardware: valid while HwUsable (HwLock shared to read it) */
	ERESOURCE HwLock;
	BOOLEAN HwLockInitialized;
	volatile BOOLEAN HwUsable;
	volatile UCHAR *Regs;		/* BAR0, MmMapIoSpaceEx, non-cached */
	volatile UCHAR *Fb;		/* BAR2, MmMapIoSpaceEx, read only */
	SIZE_T FbLen;
	PHYSICAL_ADDRESS FbPhys;
	MEMORY_CACHING_TYPE FbCache;	/* MmWriteCombined iff prefetchable */
	PVOID IntConnection;		/* PKINTERRUPT or message table */
	ULONG IntVersion;		/* CONNECT_LINE_BASED / _MESSAGE_BASED */
	PKINTERRUPT IntObject;		/* for KeSynchronizeExecution; valid
					 * from IoConnectInterruptEx until
					 * IoDisconnectInterruptEx */
	/*
	 * Interrupt spin lock (written only by the ISR, under
	 * KeSynchronizeExecution, or before IoConnectInterruptEx at
	 * START_DEVICE): IntUsable - the ISR may claim and queue
	 * the DPC, the DPC may use IntObject; cleared before the interrupt
	 * is disconnected (HbDisconnectInterrupt).  IntMask - what INT_MASK
	 * holds: every INT_MASK write after the connection goes through it,
	 * so the ISR learns the enabled bits without an MMIO read.
	 */
	volatile BOOLEAN IntUsable;
	volatile ULONG IntMask;
	KDPC Dpc;
	volatile LONG IsrStatus;	/* INT_STATUS bits seen by the ISR */

	struct hilbox_info Info;	/* filled at START_DEVICE */
	ULONG CopyRetries;

	/* subscription */
	KMUTEX SubLock;
	ULONG Subscribers;

	/* events: DeliverLock */
	KSPIN_LOCK DeliverLock;
	BOOLEAN EvDead;			/* removed: requests fail */
	PHB_EV_RING EvRing;		/* while set, every record goes there */
	struct hilbox_event *Ring;	/* NonPagedPoolNx, RingCap records */
	ULONG RingCap;
	ULONG RingHead;
	ULONG RingCount;
	ULONG64 LastSeq;
	ULONG64 EvReceived;
	ULONG64 EvRead;
	ULONG64 RingDrops;
	ULONG64 SeqGaps;
	ULONG64 Flushed;
	volatile LONG64 IrqCount;
	volatile LONG64 IrqOverflows;

	/*
	 * Watchdog (watchdog.c): link down/up, lost interrupts, storms.
	 * LinkDown is written with HwLock exclusive; EvLinkDown under
	 * DeliverLock (requests fail with STATUS_IO_DEVICE_ERROR meanwhile).
	 */
	KTIMER WdTimer;
	KDPC WdDpc;
	PIO_WORKITEM WdWork;
	KEVENT WdIdle;			/* no work item queued or running */
	volatile LONG WdQueued;
	volatile BOOLEAN LinkDown;
	BOOLEAN EvLinkDown;
	ULONG64 LinkDownAt;
	LONG64 WdIrqSeen;		/* IrqCount at the previous tick */
	ULONG EmptyRuns;		/* DPC only: EV_READY, nothing popped */
	volatile LONG StormMasked;	/* the DPC left the interrupt masked */
	volatile LONG64 LinkDowns;
	volatile LONG64 FallbackDrains;
	volatile LONG64 IrqStorms;
	volatile LONG64 IrqSpurious;

	/* pended READ_EVENTS / IRP_MJ_READ requests: CsqLock */
	IO_CSQ Csq;
	KSPIN_LOCK CsqLock;
	LIST_ENTRY PendingList;
	ULONG PendingCount;
	/*
	 * Completion order (events.c HbCompleteInOrder): requests that got
	 * records are queued here in hand-out order (under DeliverLock, then
	 * CompleteLock) and completed by one thread at a time (Completing),
	 * so IoCompleteRequest runs in sequence order whichever context (DPC,
	 * dispatch, another CPU's DPC) handed the records out.
	 */
	KSPIN_LOCK CompleteLock;
	LIST_ENTRY CompleteList;
	BOOLEAN Completing;
} HB_DEVICE, *PHB_DEVICE;

/* Driver-wide state. */
typedef struct _HB_GLOBAL {
	PDRIVER_OBJECT Driver;
	KSPIN_LOCK Lock;
	ULONG64 InstanceBits;
	ULONG RingSize;			/* registry Parameters\RingSize */
	ULONG CopyRetries;		/* registry Parameters\CopyRetries */
	ULONG WatchdogMs;		/* registry Parameters\WatchdogMs */
	BOOLEAN NotifyRegistered;	/* process-exit callback installed */
	KSPIN_LOCK MapLock;
	LIST_ENTRY Maps;		/* every HB_MAPPING not yet DONE */
	volatile LONG MapCount;
} HB_GLOBAL;

extern HB_GLOBAL HbGlobal;

/* register access: BAR0 is mapped non-cached, so these are single accesses */
static __inline ULONG HbRd32(PHB_DEVICE Dev, ULONG Reg)
{
	return *(volatile ULONG *)(Dev->Regs + Reg);
}

static __inline void HbWr32(PHB_DEVICE Dev, ULONG Reg, ULONG Val)
{
	*(volatile ULONG *)(Dev->Regs + Reg) = Val;
}

/* 64-bit registers: one aligned 8-byte access is atomic (SPEC section 3). */
static __inline ULONG64 HbRd64(PHB_DEVICE Dev, ULONG Reg)
{
	return *(volatile ULONG64 *)(Dev->Regs + Reg);
}

/* Full fence: orders the UC FRAME_SEQ reads against the (WC) BAR2 reads. */
static __inline void HbFence(void)
{
	__asm__ __volatile__("mfence" ::: "memory");
}

/* driver.c */
BOOLEAN HbHwEnter(PHB_DEVICE Dev);
void HbHwExit(PHB_DEVICE Dev);
ULONG64 HbNowNs(void);
NTSTATUS HbCompleteIrp(PIRP Irp, NTSTATUS Status, ULONG_PTR Info);

/* events.c */
void HbEventsInit(PHB_DEVICE Dev);
KSERVICE_ROUTINE HbIsr;
KMESSAGE_SERVICE_ROUTINE HbMessageIsr;
KDEFERRED_ROUTINE HbDpc;
NTSTATUS HbDispatchReadEvents(PHB_DEVICE Dev, PIRP Irp, ULONG Length);
void HbSetSubscription(PHB_FILE File, HB_SUB Sub);
void HbAutoSubscribe(PHB_FILE File);
void HbRestoreEventEnable(PHB_DEVICE Dev);
void HbUnmaskInterrupts(PHB_DEVICE Dev);
void HbRetireInterrupts(PHB_DEVICE Dev, BOOLEAN DeviceGone);
void HbFlushFileRequests(PHB_DEVICE Dev, PHB_FILE File);
void HbFailAllRequests(PHB_DEVICE Dev, NTSTATUS Status);
void HbFailPendingForLink(PHB_DEVICE Dev, BOOLEAN Down);

/* watchdog.c */
ULONG HbWatchdogPeriodMs(void);
NTSTATUS HbHwGoneStatus(PHB_DEVICE Dev);
NTSTATUS HbWatchdogInit(PHB_DEVICE Dev);
void HbWatchdogStart(PHB_DEVICE Dev);
void HbWatchdogStop(PHB_DEVICE Dev);
void HbWatchdogFree(PHB_DEVICE Dev);
NTSTATUS HbIoctlSetEvents(PHB_FILE File, PIRP Irp);

/* mapping.c */
NTSTATUS HbIoctlMap(PHB_FILE File, PIRP Irp);
BOOLEAN HbInCallerContext(PIRP Irp);
NTSTATUS HbMapView(PHB_FILE File, PVOID KernelVa, SIZE_T Length,
		   MEMORY_CACHING_TYPE Cache, PHB_EV_RING EvRing, PVOID *UserVa);

/* evring.c */
NTSTATUS HbIoctlEvRing(PHB_FILE File, PIRP Irp);
NTSTATUS HbIoctlEvRingWait(PHB_FILE File, PIRP Irp);
BOOLEAN HbEvRingStore(PHB_DEVICE Dev, const struct hilbox_event *Rec);
PKEVENT HbEvRingPublish(PHB_DEVICE Dev);
void HbEvRingSetState(PHB_DEVICE Dev, ULONG State);
void HbEvRingDetach(PHB_FILE File);
void HbEvRingRelease(PHB_EV_RING Ring);
NTSTATUS HbIoctlUnmap(PHB_FILE File, PIRP Irp);
void HbRevokeFileMappings(PHB_FILE File);
void HbRevokeDeviceMappings(PHB_DEVICE Dev);
ULONG HbDeviceMappingCount(PHB_DEVICE Dev);
VOID NTAPI HbProcessNotify(HANDLE ParentId, HANDLE ProcessId, BOOLEAN Create);

/* ioctl.c */
NTSTATUS HbDispatchDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp);

/* seh.c */
typedef NTSTATUS (*HB_GUARDED_FN)(PVOID Context);
NTSTATUS HbCallGuarded(HB_GUARDED_FN Fn, PVOID Context);

#endif /* HILBOX_DRV_H */
