/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe-ioctl.h - the Windows driver's IOCTL codes as the probe uses them.
 *
 * The authoritative codes live in guest-driver/windows/hilbox_ioctl.h (owned by the Windows
 * driver).  When that header exists it is used (the build passes -I guest-driver/windows);
 * every code it does not define falls back to the values below, which follow the same plan:
 * device type 0x8842, functions 0x8B0.., METHOD_BUFFERED, FILE_READ_ACCESS, carrying the
 * OS-neutral structs of hilbox_uapi.h.
 *
 * Mapping the framebuffer has no Linux counterpart (mmap): MAP_FB (struct hilbox_win_map, in/out)
 * maps BAR2 read-only into the calling process and returns user_va; UNMAP_FB (struct
 * hilbox_win_unmap) takes that address back.
 */
#ifndef HILBOX_PROBE_IOCTL_H
#define HILBOX_PROBE_IOCTL_H

#include <windows.h>
#include <winioctl.h>

#include "hilbox_uapi.h"

#if defined(__has_include)
#if __has_include("hilbox_ioctl.h")
#include "hilbox_ioctl.h"
#define HILBOX_PROBE_DRIVER_HEADER 1
#endif
#endif

#ifndef HILBOX_DEVICE_TYPE
#define HILBOX_DEVICE_TYPE 0x8842
#endif
#define HILBOX_PROBE_CTL(fn) CTL_CODE(HILBOX_DEVICE_TYPE, (fn), METHOD_BUFFERED, FILE_READ_ACCESS)

#ifndef IOCTL_HILBOX_INFO
#define IOCTL_HILBOX_INFO		HILBOX_PROBE_CTL(0x8b0)
#endif
#ifndef IOCTL_HILBOX_STATS
#define IOCTL_HILBOX_STATS		HILBOX_PROBE_CTL(0x8b1)
#endif
#ifndef IOCTL_HILBOX_CLOCK
#define IOCTL_HILBOX_CLOCK		HILBOX_PROBE_CTL(0x8b2)
#endif
#ifndef IOCTL_HILBOX_FRAME_STATE
#define IOCTL_HILBOX_FRAME_STATE	HILBOX_PROBE_CTL(0x8b3)
#endif
#ifndef IOCTL_HILBOX_SET_EVENTS
#define IOCTL_HILBOX_SET_EVENTS		HILBOX_PROBE_CTL(0x8b4)
#endif
#ifndef IOCTL_HILBOX_COPY_FRAME
#define IOCTL_HILBOX_COPY_FRAME		HILBOX_PROBE_CTL(0x8b5)
#endif
#ifndef IOCTL_HILBOX_MAP_FB
#define IOCTL_HILBOX_MAP_FB		HILBOX_PROBE_CTL(0x8B9)
#endif
#ifndef IOCTL_HILBOX_UNMAP_FB
#define IOCTL_HILBOX_UNMAP_FB		HILBOX_PROBE_CTL(0x8BA)
#endif

#ifndef HILBOX_PROBE_DRIVER_HEADER
/* The driver header's MAP_FB / UNMAP_FB structs, same layout. */
struct hilbox_win_map {
	__u64 offset;		/* in: byte offset into BAR2, page aligned */
	__u64 length;		/* in: bytes, 0 = up to the end of BAR2 */
	__u32 flags;		/* in: must be 0 */
	__u32 cache_type;	/* out */
	__u64 user_va;		/* out: start of the read-only view in the calling process */
	__u64 mapped_length;	/* out: bytes mapped */
	__u64 reserved[3];
};

struct hilbox_win_unmap {
	__u64 user_va;		/* in: user_va returned by IOCTL_HILBOX_MAP_FB */
	__u64 reserved[3];
};
#endif

#endif /* HILBOX_PROBE_IOCTL_H */
