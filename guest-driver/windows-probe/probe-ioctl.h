/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * probe-ioctl.h - the Windows driver's IOCTL codes as the probe uses them.
 *
 * The authoritative codes live in guest-driver/windows/hilbox_ioctl.h (owned by the Windows
 * driver).  When that header exists it is used (the build passes -I guest-driver/windows);
 * every code it does not define falls back to the values below, which follow the same plan:
 * device type 0x8484, functions 0x800.., METHOD_BUFFERED, FILE_READ_ACCESS, carrying the
 * OS-neutral structs of hilbox_uapi.h.
 *
 * Mapping the framebuffer has no Linux counterpart (mmap): MAP_FB maps BAR2 read-only into the
 * calling process and returns the user address; UNMAP_FB takes that address back.  The probe
 * reads only the first two 64-bit fields of the reply (address, length), so a driver struct
 * that starts with them works unchanged.
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
#define HILBOX_DEVICE_TYPE 0x8484
#endif
#define HILBOX_PROBE_CTL(fn) CTL_CODE(HILBOX_DEVICE_TYPE, (fn), METHOD_BUFFERED, FILE_READ_ACCESS)

#ifndef IOCTL_HILBOX_INFO
#define IOCTL_HILBOX_INFO		HILBOX_PROBE_CTL(0x800)
#endif
#ifndef IOCTL_HILBOX_STATS
#define IOCTL_HILBOX_STATS		HILBOX_PROBE_CTL(0x801)
#endif
#ifndef IOCTL_HILBOX_CLOCK
#define IOCTL_HILBOX_CLOCK		HILBOX_PROBE_CTL(0x802)
#endif
#ifndef IOCTL_HILBOX_FRAME_STATE
#define IOCTL_HILBOX_FRAME_STATE	HILBOX_PROBE_CTL(0x803)
#endif
#ifndef IOCTL_HILBOX_SET_EVENTS
#define IOCTL_HILBOX_SET_EVENTS		HILBOX_PROBE_CTL(0x804)
#endif
#ifndef IOCTL_HILBOX_COPY_FRAME
#define IOCTL_HILBOX_COPY_FRAME		HILBOX_PROBE_CTL(0x805)
#endif
#ifndef IOCTL_HILBOX_MAP_FB
#define IOCTL_HILBOX_MAP_FB		HILBOX_PROBE_CTL(0x806)
#endif
#ifndef IOCTL_HILBOX_UNMAP_FB
#define IOCTL_HILBOX_UNMAP_FB		HILBOX_PROBE_CTL(0x807)
#endif

/* MAP_FB reply / UNMAP_FB request as the probe reads and writes them. */
struct probe_map_fb {
	__u64 address;		/* user address of the read-only BAR2 view */
	__u64 length;		/* bytes mapped (bar2_size) */
	__u64 reserved[2];
};

#endif /* HILBOX_PROBE_IOCTL_H */
