/* SPDX-License-Identifier: MIT */
/*
 * hilbox_ioctl.h - Windows DeviceIoControl interface of hilbox.sys.
 *
 * The structs are the OS-neutral ones of ../include/hilbox_uapi.h (identical
 * layout for 32- and 64-bit callers); this header only adds the Windows
 * IOCTL codes, the device interface GUID, the device names and the two
 * Windows-only structs of the zero-copy mapping (Linux uses mmap() instead).
 *
 * Usable from user mode (include <windows.h> and <winioctl.h> first) and from
 * the driver (<ntddk.h> first).  Build with -I guest-driver/include.
 *
 * Status codes (what GetLastError() shows after DeviceIoControl fails):
 *   STATUS_INVALID_DEVICE_REQUEST (ERROR_INVALID_FUNCTION)  unknown IOCTL code
 *   STATUS_BUFFER_TOO_SMALL       (ERROR_INSUFFICIENT_BUFFER) input or output
 *                                 buffer shorter than the struct / one record
 *   STATUS_INVALID_PARAMETER      (ERROR_INVALID_PARAMETER) bad field values,
 *                                 non-zero reserved fields
 *   STATUS_NO_SUCH_DEVICE         (ERROR_FILE_NOT_FOUND)    device removed
 *   STATUS_CANCELLED              (ERROR_OPERATION_ABORTED) CancelIoEx, handle
 *                                 closed, thread exit
 *   STATUS_RETRY                  (ERROR_RETRY)  COPY_FRAME retries exhausted
 *   STATUS_IO_TIMEOUT             (ERROR_SEM_TIMEOUT) FRAME_SEQ stayed odd 1 s
 *   STATUS_ACCESS_VIOLATION       (ERROR_NOACCESS) bad COPY_FRAME.buf
 * See guest-driver/windows/README.md for the full mapping to the Linux errnos.
 */
#ifndef HILBOX_IOCTL_H
#define HILBOX_IOCTL_H

#include "hilbox_uapi.h"

/*
 * Device interface class of hilbox.sys:
 * {a1c04ace-9862-4389-80ff-26e12b4e9149}.  Enumerate it with
 * CM_Get_Device_Interface_List / SetupDiGetClassDevs(DIGCF_DEVICEINTERFACE),
 * or open the named device \\.\HilboxN (N = hilbox_info.instance).
 */
#define HILBOX_INTERFACE_GUID_INIT \
	{ 0xa1c04ace, 0x9862, 0x4389, \
	  { 0x80, 0xff, 0x26, 0xe1, 0x2b, 0x4e, 0x91, 0x49 } }
#define HILBOX_INTERFACE_GUID_STRING "{a1c04ace-9862-4389-80ff-26e12b4e9149}"

#define HILBOX_NT_DEVICE_PREFIX		L"\\Device\\Hilbox"	/* + N */
#define HILBOX_DOS_DEVICE_PREFIX	L"\\DosDevices\\Hilbox"	/* + N */
#define HILBOX_USER_PATH_PREFIX		"\\\\.\\Hilbox"		/* + N */

/* Vendor device type (0x8000..0xFFFF) and function codes (0x800..0xFFF). */
#define HILBOX_DEVICE_TYPE		0x8842u	/* unsigned: bit 31 of the code is set */
#define HILBOX_FN_BASE			0x8B0

#define HILBOX_CTL(fn, method) \
	CTL_CODE(HILBOX_DEVICE_TYPE, HILBOX_FN_BASE + (fn), method, \
		 FILE_READ_ACCESS)

/*
 * Same structs and semantics as the Linux ioctls of the same name
 * (guest-driver/INTERFACE.md section 4).  All METHOD_BUFFERED: the in-struct
 * is lpInBuffer, the out-struct lpOutBuffer (the same buffer may be passed
 * for both), and every one needs a handle opened with read access.
 */
#define IOCTL_HILBOX_INFO		HILBOX_CTL(0, METHOD_BUFFERED)	/* out: hilbox_info */
#define IOCTL_HILBOX_STATS		HILBOX_CTL(1, METHOD_BUFFERED)	/* out: hilbox_stats */
#define IOCTL_HILBOX_CLOCK		HILBOX_CTL(2, METHOD_BUFFERED)	/* out: hilbox_clock */
#define IOCTL_HILBOX_FRAME_STATE	HILBOX_CTL(3, METHOD_BUFFERED)	/* out: hilbox_frame_state */
#define IOCTL_HILBOX_SET_EVENTS		HILBOX_CTL(4, METHOD_BUFFERED)	/* in/out: hilbox_events_ctl */
#define IOCTL_HILBOX_COPY_FRAME		HILBOX_CTL(5, METHOD_BUFFERED)	/* in/out: hilbox_copy_frame */

/*
 * Inverted call: pend as many of these as you like (FILE_FLAG_OVERLAPPED
 * handle, one OVERLAPPED each).  lpOutBuffer receives between 1 and
 * min(nOutBufferSize / 24, hilbox_info.max_read_records) whole
 * struct hilbox_event records; lpBytesReturned = 24 * records.  Requests are
 * served oldest first across all handles of the device, records in device
 * (seq) order.  ReadFile on the same handle is equivalent.  No input buffer.
 */
#define IOCTL_HILBOX_READ_EVENTS	HILBOX_CTL(8, METHOD_BUFFERED)

/* Zero-copy: map BAR2 read-only into the calling process (section 2 of README). */
#define IOCTL_HILBOX_MAP_FB		HILBOX_CTL(9, METHOD_BUFFERED)	/* in/out: hilbox_win_map */
#define IOCTL_HILBOX_UNMAP_FB		HILBOX_CTL(10, METHOD_BUFFERED)	/* in: hilbox_win_unmap */

/*
 * Shared-memory event ring (INTERFACE.md section 3b, Windows form): the
 * driver maps the ring read-only into the calling process (as MAP_FB does
 * BAR2) and signals an event object of the caller's after each batch.
 * EV_RING_WAIT with the OS-neutral struct hilbox_ev_ring_wait releases what
 * the consumer read (timeout_ms must be 0: wait on the event instead).
 */
#define IOCTL_HILBOX_EV_RING		HILBOX_CTL(11, METHOD_BUFFERED)	/* in/out: hilbox_win_ev_ring */
#define IOCTL_HILBOX_EV_RING_WAIT	HILBOX_CTL(12, METHOD_BUFFERED)	/* in/out: hilbox_ev_ring_wait */

struct hilbox_win_ev_ring {
	__u32 records;		/* in: slots, power of two, HILBOX_EV_RING_MIN..MAX */
	__u32 flags;		/* in: 0 */
	__u64 event;		/* in: HANDLE of an event (EVENT_MODIFY_STATE)
				 * set after each batch, or 0 for none */
	__u64 user_va;		/* out: the read-only view (header page, slots) */
	__u64 mapped_length;	/* out: bytes mapped (multiple of the page size) */
	__u64 reserved[2];	/* in: 0, out: 0 */
};

/* hilbox_win_map.cache_type */
#define HILBOX_WIN_CACHE_UNCACHED	0
#define HILBOX_WIN_CACHE_WRITE_COMBINED	1

struct hilbox_win_map {
	__u64 offset;		/* in: byte offset into BAR2, page aligned */
	__u64 length;		/* in: bytes, 0 = up to the end of BAR2;
				 * rounded up to whole pages */
	__u32 flags;		/* in: must be 0 */
	__u32 cache_type;	/* out: HILBOX_WIN_CACHE_* */
	__u64 user_va;		/* out: start of the read-only view in the
				 * calling process */
	__u64 mapped_length;	/* out: bytes mapped (multiple of the page size) */
	__u64 reserved[3];	/* in: 0, out: 0 */
};

struct hilbox_win_unmap {
	__u64 user_va;		/* in: user_va returned by IOCTL_HILBOX_MAP_FB */
	__u64 reserved[3];	/* in: 0 */
};

/* Views per open file object (IOCTL_HILBOX_MAP_FB fails beyond). */
#define HILBOX_WIN_MAX_MAPS_PER_FILE	64

HILBOX_ASSERT_SIZE(struct hilbox_win_map, 64);
HILBOX_ASSERT_SIZE(struct hilbox_win_unmap, 32);
HILBOX_ASSERT_SIZE(struct hilbox_win_ev_ring, 48);

#endif /* HILBOX_IOCTL_H */
