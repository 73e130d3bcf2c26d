/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * hilbox_uapi.h - user/kernel interface of the hilbox-pci guest drivers.
 *
 * Shared by the Linux driver (hilbox.ko), the Windows driver and the probe
 * tools.  Everything in here is OS neutral: fixed-size little-endian fields,
 * every 64-bit field naturally aligned, every struct a multiple of 8 bytes,
 * so the layout is identical for 32-bit and 64-bit callers and for the
 * Linux ioctl() and the Windows DeviceIoControl() paths.  Only the Linux
 * ioctl request numbers are defined here; the Windows IOCTL codes live in the
 * Windows driver's header and carry the same structs.
 *
 * Reserved fields must be zero on input and are zero on output.
 * See guest-driver/INTERFACE.md for the full semantics.
 */
#ifndef HILBOX_UAPI_H
#define HILBOX_UAPI_H

#if defined(__linux__)
#include <linux/types.h>
#include <linux/ioctl.h>
#else
/* Non-Linux guests: provide the Linux fixed-size type names. */
#if defined(_MSC_VER)
typedef unsigned __int8 __u8;
typedef unsigned __int16 __u16;
typedef unsigned __int32 __u32;
typedef unsigned __int64 __u64;
typedef signed __int8 __s8;
typedef signed __int16 __s16;
typedef signed __int32 __s32;
typedef signed __int64 __s64;
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int8_t __s8;
typedef int16_t __s16;
typedef int32_t __s32;
typedef int64_t __s64;
#endif
#endif

/* ABI version: bits 31..16 major (incompatible changes), 15..0 minor. */
#define HILBOX_ABI_VERSION_MAJOR	1
#define HILBOX_ABI_VERSION_MINOR	1
#define HILBOX_ABI_VERSION \
	((HILBOX_ABI_VERSION_MAJOR << 16) | HILBOX_ABI_VERSION_MINOR)

/* PCI identity (SPEC section 1). */
#define HILBOX_PCI_VENDOR_ID		0x1234
#define HILBOX_PCI_DEVICE_ID		0x4842

/* CAPS register bits (SPEC section 3), reported in hilbox_info.caps. */
#define HILBOX_CAP_FB			(1u << 0)
#define HILBOX_CAP_MOUSE		(1u << 1)
#define HILBOX_CAP_MSI			(1u << 2)
#define HILBOX_CAP_FEED			(1u << 3)
#define HILBOX_CAP_INPUT		(1u << 4)
#define HILBOX_CAP_GEN			(1u << 5)
#define HILBOX_CAP_FB_MMIO		(1u << 8)

/* FORMAT values. */
#define HILBOX_FORMAT_RGB24		1

/* FB_MODE values. */
#define HILBOX_FB_MODE_DIRECT		0
#define HILBOX_FB_MODE_MMIO		1

/* hilbox_info.drv_flags: how this driver instance runs the device. */
#define HILBOX_DRV_MSI			(1u << 0) /* MSI in use (else INTx) */
#define HILBOX_DRV_FB_WC		(1u << 1) /* BAR2 mapped write-combined */
#define HILBOX_DRV_NOWAIT		(1u << 2) /* read supports IOCB_NOWAIT */
#define HILBOX_DRV_EV_RING		(1u << 3) /* shared-memory event ring (ABI 1.1) */

/*
 * Event record, returned by read() (Linux) / ReadFile (Windows).
 * Byte-identical to the device's EV_HEAD record (SPEC section 5).
 */
struct hilbox_event {
	__u64 seq;		/* 1 = first event after device reset */
	__u64 timestamp_ns;	/* device clock when produced */
	__s16 dx;
	__s16 dy;
	__s8 wheel;		/* + = up */
	__u8 buttons;		/* HILBOX_BTN_* state after the event */
	__u8 source;		/* HILBOX_SRC_* */
	__u8 flags;		/* HILBOX_EVF_* */
};

#define HILBOX_EVENT_SIZE		24

#define HILBOX_BTN_LEFT			(1u << 0)
#define HILBOX_BTN_RIGHT		(1u << 1)
#define HILBOX_BTN_MIDDLE		(1u << 2)
#define HILBOX_BTN_SIDE			(1u << 3)
#define HILBOX_BTN_EXTRA		(1u << 4)

#define HILBOX_SRC_GENERATOR		0
#define HILBOX_SRC_FEED			1
#define HILBOX_SRC_INPUT		2

#define HILBOX_EVF_END_OF_REPORT	(1u << 0)

/* HILBOX_IOC_INFO: static description of the device and the driver. */
struct hilbox_info {
	__u32 abi_version;	/* HILBOX_ABI_VERSION implemented by the driver */
	__u32 dev_version;	/* VERSION register */
	__u32 caps;		/* CAPS register, HILBOX_CAP_* */
	__u32 drv_flags;	/* HILBOX_DRV_* */
	__u32 width;		/* pixels per line */
	__u32 height;		/* lines */
	__u32 stride;		/* bytes per line */
	__u32 format;		/* HILBOX_FORMAT_* */
	__u32 fps;
	__u32 fb_bytes;		/* stride * height */
	__u64 bar2_size;	/* bytes of BAR2 = largest mappable length */
	__u32 fb_mode;		/* HILBOX_FB_MODE_* */
	__u32 mmio_latency_ns;
	__u32 ev_fifo_depth;	/* device FIFO capacity, records */
	__u32 ev_rate_hz;	/* generator rate, 0 = none */
	__u32 ev_bundle;	/* generator packets per report */
	__u32 ring_size;	/* driver event ring capacity, records */
	__u32 instance;		/* N of /dev/hilboxN (\\.\HilboxN on Windows) */
	__u32 event_size;	/* sizeof(struct hilbox_event) */
	__u32 max_read_records;	/* most records one read returns */
	__u32 reserved0;
	__u64 reserved[5];
};

/* HILBOX_IOC_STATS: live counters. */
struct hilbox_stats {
	/* device registers */
	__u64 frames_produced;	/* FRAMES_PRODUCED */
	__u64 frame_number;	/* FRAME_NUMBER */
	__u64 frame_timestamp;	/* FRAME_TIMESTAMP */
	__u64 fb_write_attempts; /* FB_WRITE_ATTEMPTS */
	__u64 ev_produced;	/* EV_PRODUCED */
	__u64 ev_delivered;	/* EV_DELIVERED (popped by the driver) */
	__u64 ev_dropped;	/* EV_DROPPED (lost inside the device) */
	/* driver counters since this device instance was bound */
	__u64 drv_ev_received;	/* records popped from the device FIFO */
	__u64 drv_ev_read;	/* records returned to readers */
	__u64 drv_ring_drops;	/* records discarded: driver ring full */
	__u64 drv_seq_gaps;	/* seq numbers missing between popped records */
	__u64 drv_flushed;	/* records discarded by HILBOX_EVCTL_FLUSH */
	__u64 irq_count;	/* interrupts handled with a status bit set */
	__u64 irq_overflows;	/* interrupts that reported EV_OVERFLOW */
	__u32 frame_seq;	/* FRAME_SEQ */
	__u32 ev_count;		/* EV_COUNT: records waiting in the FIFO */
	__u32 ring_level;	/* records waiting in the driver ring */
	__u32 feed_errors;	/* FEED_ERRORS */
	__u32 subscribers;	/* open files with events enabled */
	__u32 readers_waiting;	/* blocked read requests queued */
	__u64 link_downs;	/* times the watchdog found the link down */
	__u64 fallback_drains;	/* FIFO drains by the watchdog (interrupt lost) */
	__u64 irq_storms;	/* times the interrupt was left masked: a storm */
	__u64 irq_spurious;	/* MSI interrupts with nothing in INT_STATUS */
	__u64 reserved[3];
};

/* HILBOX_IOC_CLOCK: the device clock (SPEC DEVICE_CLOCK). */
struct hilbox_clock {
	__u64 device_ns;	/* DEVICE_CLOCK */
	__u64 monotonic_ns;	/* guest CLOCK_MONOTONIC right after the read */
	__u64 reserved[2];
};

/* HILBOX_IOC_FRAME_STATE: the seqlock words, for readers of the mapping. */
struct hilbox_frame_state {
	__u32 frame_seq;	/* FRAME_SEQ, read first */
	__u32 reserved0;
	__u64 frame_number;	/* FRAME_NUMBER, read after FRAME_SEQ */
	__u64 frame_timestamp;	/* FRAME_TIMESTAMP */
	__u64 device_ns;	/* DEVICE_CLOCK, read last */
	__u64 reserved[4];
};

/* HILBOX_IOC_SET_EVENTS: subscribe this open file to mouse events. */
struct hilbox_events_ctl {
	__u32 enable;		/* in: 0 = unsubscribe, 1 = subscribe */
	__u32 flags;		/* in: HILBOX_EVCTL_* */
	__u32 subscribers;	/* out: subscribed files after the call */
	__u32 ring_level;	/* out: records in the driver ring after the call */
	__u64 reserved[2];
};

#define HILBOX_EVCTL_FLUSH		(1u << 0) /* discard the driver ring */
#define HILBOX_EVCTL_ALL		(HILBOX_EVCTL_FLUSH)

/* HILBOX_IOC_COPY_FRAME: copy one consistent frame into a user buffer. */
struct hilbox_copy_frame {
	__u64 buf;		/* in: user address of the destination */
	__u64 buf_len;		/* in: bytes available at buf (> 0) */
	__u32 flags;		/* in: HILBOX_COPY_* */
	__u32 max_retries;	/* in: seqlock retries, 0 = driver default */
	__u64 frame_number;	/* out: frame in the buffer */
	__u64 frame_timestamp;	/* out: its FRAME_TIMESTAMP */
	__u32 frame_seq;	/* out: FRAME_SEQ before the copy */
	__u32 frame_seq_end;	/* out: FRAME_SEQ after the copy */
	__u32 retries;		/* out: attempts that had to be repeated */
	__u32 reserved0;
	__u64 bytes_copied;	/* out: min(buf_len, fb_bytes) */
	__u64 frames_dropped;	/* out: frame numbers skipped since this
				 * file's previous successful copy */
	__u64 copy_ns;		/* out: time spent in the driver */
	__u64 reserved[6];
};

#define HILBOX_COPY_NO_SEQLOCK		(1u << 0) /* one pass, no retry */
#define HILBOX_COPY_ALL			(HILBOX_COPY_NO_SEQLOCK)

/*
 * Shared-memory event ring (ABI 1.1, INTERFACE.md section 3b): a ring the
 * driver writes and the process maps read-only.  The mapping is one header
 * page followed by `records` slots; the consumer reports how far it has read
 * with HILBOX_IOC_EV_RING_WAIT, which also waits for new records.
 */
#define HILBOX_EV_RING_MAGIC		0x48425247u	/* "HBRG" */
#define HILBOX_EV_RING_VERSION		1u
#define HILBOX_EV_RING_MIN		64u		/* slots, power of two */
#define HILBOX_EV_RING_MAX		65536u
/* mmap offset of the ring (beyond any BAR2: at most 256 MiB) */
#define HILBOX_EV_RING_MMAP_OFFSET	0x40000000ull

/* hilbox_ev_ring_hdr.state */
#define HILBOX_EV_RING_LIVE		0u
#define HILBOX_EV_RING_LINK_DOWN	1u	/* no records until the link returns */
#define HILBOX_EV_RING_DEAD		2u	/* device removed: no more records */

/* One slot: the ring position it holds, written after the record. */
struct hilbox_ev_slot {
	__u64 pos;		/* ring position p of the record (slot p % records) */
	struct hilbox_event ev;	/* the record (ev.seq: the device's sequence) */
};

/* The first page of the ring mapping.  Only the driver writes it. */
struct hilbox_ev_ring_hdr {
	__u32 magic;		/* HILBOX_EV_RING_MAGIC */
	__u32 version;		/* HILBOX_EV_RING_VERSION */
	__u32 records;		/* slots (power of two) */
	__u32 slot_size;	/* sizeof(struct hilbox_ev_slot) */
	__u64 slots_offset;	/* bytes from the mapping's start to slot 0 */
	__u64 tail;		/* positions written: records [head, tail) are readable */
	__u64 head;		/* the consumer's position, as last reported */
	__u64 dropped;		/* records not stored because the ring was full */
	__u32 state;		/* HILBOX_EV_RING_* */
	__u32 reserved0;
	__u64 wakeups;		/* notifications sent (waiters or pollers woken) */
	__u64 reserved[8];
};

/* HILBOX_IOC_EV_RING: attach a ring to this open file (one per device). */
struct hilbox_ev_ring_setup {
	__u32 records;		/* in: slots, power of two, MIN..MAX */
	__u32 flags;		/* in: 0 */
	__u64 mmap_offset;	/* out: HILBOX_EV_RING_MMAP_OFFSET */
	__u64 mmap_bytes;	/* out: length to map (header page + slots) */
	__u64 reserved[3];
};

/* HILBOX_IOC_EV_RING_WAIT: report the consumer's head, wait for records. */
struct hilbox_ev_ring_wait {
	__u64 head;		/* in: next position to read (old head <= head <= tail) */
	__u32 timeout_ms;	/* in: 0 = report only, do not wait */
	__u32 flags;		/* in: 0 */
	__u64 tail;		/* out: the tail after the call */
	__u64 dropped;		/* out: hilbox_ev_ring_hdr.dropped */
	__u64 reserved[2];
};

#if defined(__linux__)
/*
 * Linux ioctl numbers: type 'H', numbers 0xB0..0xBF (free in
 * Documentation/userspace-api/ioctl/ioctl-number.rst).
 */
#define HILBOX_IOC_MAGIC	'H'
#define HILBOX_IOC_BASE		0xB0

#define HILBOX_IOC_INFO \
	_IOR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 0, struct hilbox_info)
#define HILBOX_IOC_STATS \
	_IOR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 1, struct hilbox_stats)
#define HILBOX_IOC_CLOCK \
	_IOR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 2, struct hilbox_clock)
#define HILBOX_IOC_FRAME_STATE \
	_IOR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 3, struct hilbox_frame_state)
#define HILBOX_IOC_SET_EVENTS \
	_IOWR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 4, struct hilbox_events_ctl)
#define HILBOX_IOC_COPY_FRAME \
	_IOWR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 5, struct hilbox_copy_frame)
#define HILBOX_IOC_EV_RING \
	_IOWR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 6, struct hilbox_ev_ring_setup)
#define HILBOX_IOC_EV_RING_WAIT \
	_IOWR(HILBOX_IOC_MAGIC, HILBOX_IOC_BASE + 7, struct hilbox_ev_ring_wait)
#endif

/* Layout checks: identical on every ABI. */
#if defined(__cplusplus)
#define HILBOX_ASSERT_SIZE(t, n) static_assert(sizeof(t) == (n), #t)
#elif defined(__KERNEL__)
#define HILBOX_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HILBOX_ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), #t)
#else
#define HILBOX_ASSERT_SIZE(t, n)
#endif

HILBOX_ASSERT_SIZE(struct hilbox_event, 24);
HILBOX_ASSERT_SIZE(struct hilbox_info, 128);
HILBOX_ASSERT_SIZE(struct hilbox_stats, 192);
HILBOX_ASSERT_SIZE(struct hilbox_clock, 32);
HILBOX_ASSERT_SIZE(struct hilbox_frame_state, 64);
HILBOX_ASSERT_SIZE(struct hilbox_events_ctl, 32);
HILBOX_ASSERT_SIZE(struct hilbox_copy_frame, 128);
HILBOX_ASSERT_SIZE(struct hilbox_ev_slot, 32);
HILBOX_ASSERT_SIZE(struct hilbox_ev_ring_hdr, 128);
HILBOX_ASSERT_SIZE(struct hilbox_ev_ring_setup, 48);
HILBOX_ASSERT_SIZE(struct hilbox_ev_ring_wait, 48);

#endif /* HILBOX_UAPI_H */
