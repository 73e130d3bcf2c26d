/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * hilbox_regs.h - the hilbox-pci device contract (qemu-device/SPEC.md) as C constants.
 *
 * THE one copy of every number of the contract: PCI identity, BARs, register offsets,
 * ID/VERSION/FORMAT values, register bits, the event and host-feed record layouts and the
 * QOM property limits and defaults.  Included by the QEMU device (qemu-device/hilbox-pci.c;
 * scripts/build-qemu.mjs puts it at include/hw/misc/hilbox_regs.h of the QEMU tree), the
 * Linux driver and the Windows driver.  test/unit/contract.test.ts checks it against
 * SPEC.md and orchestrator/src/device/spec.ts.
 *
 * Rules, so every compiler and the contract test can read it:
 *  - plain C, no includes, no types, no function-like macros;
 *  - one "#define HB_NAME value" per line, the value a number ("0x1cu", "16") or a
 *    simple expression of numbers and earlier HB_ names ("(1u << 3)", "(A | B)");
 *  - section numbers (§) refer to SPEC.md.
 */
#ifndef HILBOX_REGS_H
#define HILBOX_REGS_H

/* ---- §1 PCI identity ---------------------------------------------------------------- */
#define HB_PCI_VENDOR_ID		0x1234u
#define HB_PCI_DEVICE_ID		0x4842u		/* "HB" */
#define HB_PCI_REVISION			0x01u
#define HB_PCI_CLASS_CODE		0x038000u	/* display, other; prog-if 0 */
#define HB_PCI_SUBSYSTEM_VENDOR_ID	0x1234u
#define HB_PCI_SUBSYSTEM_ID		0x4842u
#define HB_PCI_INTERRUPT_PIN		1u		/* INTA */
#define HB_PCI_MSI_VECTORS		1u

/* ---- §2 BARs ------------------------------------------------------------------------ */
#define HB_BAR_REGS			0
#define HB_BAR_FB			2
#define HB_REGS_SIZE			0x1000u		/* BAR0 */
#define HB_FB_BAR_MIN_SIZE		0x1000u		/* BAR2: pow2 >= FB_BYTES, at least this */

/* ---- §3 registers (BAR0 offsets; 64: low word here, high word at +4) ---------------- */
#define HB_REG_ID			0x000u
#define HB_REG_VERSION			0x004u
#define HB_REG_CAPS			0x008u
#define HB_REG_CONTROL			0x00cu
#define HB_REG_WIDTH			0x010u
#define HB_REG_HEIGHT			0x014u
#define HB_REG_STRIDE			0x018u
#define HB_REG_FORMAT			0x01cu
#define HB_REG_FPS			0x020u
#define HB_REG_FB_BYTES			0x024u
#define HB_REG_FB_MODE			0x028u
#define HB_REG_MMIO_LATENCY_NS		0x02cu
#define HB_REG_FRAME_SEQ		0x030u
#define HB_REG_FRAME_NUMBER		0x038u		/* 64 */
#define HB_REG_FRAME_TIMESTAMP		0x040u		/* 64 */
#define HB_REG_DEVICE_CLOCK		0x048u		/* 64 */
#define HB_REG_FB_WRITE_ATTEMPTS	0x050u		/* 64 */
#define HB_REG_FRAMES_PRODUCED		0x058u		/* 64 */
#define HB_REG_EV_COUNT			0x080u
#define HB_REG_EV_FIFO_DEPTH		0x084u
#define HB_REG_EV_RATE_HZ		0x088u
#define HB_REG_EV_BUNDLE		0x08cu
#define HB_REG_EV_PRODUCED		0x090u		/* 64 */
#define HB_REG_EV_DELIVERED		0x098u		/* 64 */
#define HB_REG_EV_DROPPED		0x0a0u		/* 64 */
#define HB_REG_FEED_ERRORS		0x0a8u
#define HB_REG_EV_HEAD			0x0c0u		/* HB_EV_HEAD_WORDS words */
#define HB_REG_EV_POP			0x0d8u
#define HB_REG_INT_STATUS		0x100u
#define HB_REG_INT_MASK			0x104u
#define HB_REG_INT_ACK			0x108u

#define HB_EV_HEAD_WORDS		6

/* Short spellings the drivers use (aliases, never a register of their own). */
#define HB_REG_MMIO_LATENCY		HB_REG_MMIO_LATENCY_NS
#define HB_REG_FRAME_TS			HB_REG_FRAME_TIMESTAMP
#define HB_REG_FB_WRITES		HB_REG_FB_WRITE_ATTEMPTS
#define HB_REG_EV_RATE			HB_REG_EV_RATE_HZ

/* ID, VERSION, FORMAT values */
#define HB_ID_MAGIC			0x584f4248u	/* bytes in memory: "HBOX" */
#define HB_VERSION_MAJOR		1u
#define HB_VERSION_MINOR		0u
#define HB_VERSION_MAJOR_SHIFT		16		/* bits 31..16 major, 15..0 minor */
#define HB_VERSION			((HB_VERSION_MAJOR << HB_VERSION_MAJOR_SHIFT) | HB_VERSION_MINOR)
#define HB_FORMAT_RGB24			1u
#define HB_RGB24_BYTES_PER_PIXEL	3u		/* memory order R, G, B */

/* CAPS bits */
#define HB_CAP_FB			(1u << 0)
#define HB_CAP_MOUSE			(1u << 1)
#define HB_CAP_MSI			(1u << 2)
#define HB_CAP_FEED			(1u << 3)
#define HB_CAP_INPUT			(1u << 4)
#define HB_CAP_GEN			(1u << 5)
#define HB_CAP_FB_MMIO			(1u << 8)

/* CONTROL bits; RESET is write-only and self-clearing */
#define HB_CONTROL_EV_ENABLE		(1u << 0)
#define HB_CONTROL_RESET		(1u << 31)

/* FB_MODE values */
#define HB_FB_MODE_DIRECT		0u
#define HB_FB_MODE_MMIO			1u

/* INT_STATUS / INT_MASK / INT_ACK bits (§7) */
#define HB_INT_EV_READY			(1u << 0)
#define HB_INT_EV_OVERFLOW		(1u << 1)
#define HB_INT_ALL			(HB_INT_EV_READY | HB_INT_EV_OVERFLOW)

/* ---- §5 event record (little-endian; EV_HEAD words 0..5) ---------------------------- */
#define HB_EV_RECORD_SIZE		24u
#define HB_EV_OFF_SEQ			0		/* u64 */
#define HB_EV_OFF_TIMESTAMP		8		/* u64 */
#define HB_EV_OFF_DX			16		/* i16 */
#define HB_EV_OFF_DY			18		/* i16 */
#define HB_EV_OFF_WHEEL			20		/* i8 */
#define HB_EV_OFF_BUTTONS		21		/* u8 */
#define HB_EV_OFF_SOURCE		22		/* u8 */
#define HB_EV_OFF_FLAGS			23		/* u8 */

#define HB_EV_BUTTON_LEFT		(1u << 0)
#define HB_EV_BUTTON_RIGHT		(1u << 1)
#define HB_EV_BUTTON_MIDDLE		(1u << 2)
#define HB_EV_BUTTON_SIDE		(1u << 3)
#define HB_EV_BUTTON_EXTRA		(1u << 4)

#define HB_EV_SOURCE_GENERATOR		0u
#define HB_EV_SOURCE_FEED		1u
#define HB_EV_SOURCE_INPUT		2u

#define HB_EV_FLAG_END_OF_REPORT	(1u << 0)

/* ---- §6 host feed record ------------------------------------------------------------ */
#define HB_FEED_RECORD_SIZE		16u
#define HB_FEED_MAGIC			0x56454248u	/* bytes in memory: "HBEV" */
#define HB_FEED_OFF_MAGIC		0		/* u32 */
#define HB_FEED_OFF_DX			4		/* i16 */
#define HB_FEED_OFF_DY			6		/* i16 */
#define HB_FEED_OFF_WHEEL		8		/* i8 */
#define HB_FEED_OFF_BUTTONS		9		/* u8 */
#define HB_FEED_OFF_FLAGS		10		/* u8 */

/* ---- §9 QOM properties: HB_PROP_<NAME>_{MIN,MAX,DEFAULT}, NAME = property, '-' -> '_' --- */
#define HB_PROP_WIDTH_MIN		16u
#define HB_PROP_WIDTH_MAX		8192u
#define HB_PROP_WIDTH_DEFAULT		1920u

#define HB_PROP_HEIGHT_MIN		16u
#define HB_PROP_HEIGHT_MAX		8192u
#define HB_PROP_HEIGHT_DEFAULT		1080u

/* stride: 0 (= 3 x width), or 3 x width .. MAX; and stride x height <= HB_FB_MAX_BYTES */
#define HB_PROP_STRIDE_MIN		0u
#define HB_PROP_STRIDE_MAX		65536u
#define HB_PROP_STRIDE_DEFAULT		0u
#define HB_FB_MAX_BYTES			(256u * 1024u * 1024u)
/* fb-mode=direct: stride x height x fps <= HB_FB_MAX_BYTES_PER_S (the device rewrites every frame) */
#define HB_FB_MAX_BYTES_PER_S		(2048u * 1024u * 1024u)

#define HB_PROP_FPS_MIN			1u
#define HB_PROP_FPS_MAX			1000u
#define HB_PROP_FPS_DEFAULT		50u

#define HB_PROP_FB_MODE_DEFAULT		HB_FB_MODE_DIRECT

/* mmio-latency-ns: and 0 unless fb-mode=mmio */
#define HB_PROP_MMIO_LATENCY_NS_MIN	0u
#define HB_PROP_MMIO_LATENCY_NS_MAX	100000u
#define HB_PROP_MMIO_LATENCY_NS_DEFAULT	0u

#define HB_PROP_FIFO_DEPTH_MIN		1u
#define HB_PROP_FIFO_DEPTH_MAX		65536u
#define HB_PROP_FIFO_DEPTH_DEFAULT	1024u

/* mouse-rate-hz: 0 (no generator), or MIN_NONZERO .. MAX */
#define HB_PROP_MOUSE_RATE_HZ_MIN	0u
#define HB_PROP_MOUSE_RATE_HZ_MIN_NONZERO 125u
#define HB_PROP_MOUSE_RATE_HZ_MAX	8000u
#define HB_PROP_MOUSE_RATE_HZ_DEFAULT	1000u

#define HB_PROP_MOUSE_BUNDLE_MIN	1u
#define HB_PROP_MOUSE_BUNDLE_MAX	64u
#define HB_PROP_MOUSE_BUNDLE_DEFAULT	1u

#define HB_PROP_INPUT_DEFAULT		1		/* on */
#define HB_PROP_MSI_DEFAULT		1		/* on */

/* §11 fault parameters (run time, qom-set) */
#define HB_PROP_FAULT_DELAY_MS_MIN	0u
#define HB_PROP_FAULT_DELAY_MS_MAX	60000u
#define HB_PROP_FAULT_DELAY_MS_DEFAULT	100u
#define HB_PROP_FAULT_PERIOD_US_MIN	10u
#define HB_PROP_FAULT_PERIOD_US_MAX	1000000u
#define HB_PROP_FAULT_PERIOD_US_DEFAULT	1000u
#define HB_PROP_FAULT_BURST_MIN		1u
#define HB_PROP_FAULT_BURST_MAX		65536u
#define HB_PROP_FAULT_BURST_DEFAULT	256u
#define HB_PROP_FAULT_EVERY_MIN		1u
#define HB_PROP_FAULT_EVERY_MAX		1000000u
#define HB_PROP_FAULT_EVERY_DEFAULT	100u
#define HB_PROP_FAULT_LATENCY_US_MIN	1u
#define HB_PROP_FAULT_LATENCY_US_MAX	100000u
#define HB_PROP_FAULT_LATENCY_US_DEFAULT 1000u
#define HB_PROP_FAULT_RATE_MIN		1u
#define HB_PROP_FAULT_RATE_MAX		1000000u
#define HB_PROP_FAULT_RATE_DEFAULT	10u

#endif /* HILBOX_REGS_H */
