/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * hilbox-pci register block (BAR0): offsets and bits from qemu-device/SPEC.md section 3.
 * Shared by the Linux and Windows drivers; plain C, no OS headers.
 */
#ifndef HILBOX_REGS_H
#define HILBOX_REGS_H

#define HB_REG_ID		0x000
#define HB_REG_VERSION		0x004
#define HB_REG_CAPS		0x008
#define HB_REG_CONTROL		0x00c
#define  HB_CONTROL_EV_ENABLE	0x1u
#define HB_REG_WIDTH		0x010
#define HB_REG_HEIGHT		0x014
#define HB_REG_STRIDE		0x018
#define HB_REG_FORMAT		0x01c
#define HB_REG_FPS		0x020
#define HB_REG_FB_BYTES		0x024
#define HB_REG_FB_MODE		0x028
#define HB_REG_MMIO_LATENCY	0x02c
#define HB_REG_FRAME_SEQ	0x030
#define HB_REG_FRAME_NUMBER	0x038
#define HB_REG_FRAME_TS		0x040
#define HB_REG_DEVICE_CLOCK	0x048
#define HB_REG_FB_WRITES	0x050
#define HB_REG_FRAMES_PRODUCED	0x058
#define HB_REG_EV_COUNT		0x080
#define HB_REG_EV_FIFO_DEPTH	0x084
#define HB_REG_EV_RATE		0x088
#define HB_REG_EV_BUNDLE	0x08c
#define HB_REG_EV_PRODUCED	0x090
#define HB_REG_EV_DELIVERED	0x098
#define HB_REG_EV_DROPPED	0x0a0
#define HB_REG_FEED_ERRORS	0x0a8
#define HB_REG_EV_HEAD		0x0c0
#define HB_REG_EV_POP		0x0d8
#define HB_REG_INT_STATUS	0x100
#define HB_REG_INT_MASK		0x104
#define HB_REG_INT_ACK		0x108
#define  HB_INT_EV_READY	0x1u
#define  HB_INT_EV_OVERFLOW	0x2u
#define  HB_INT_ALL		(HB_INT_EV_READY | HB_INT_EV_OVERFLOW)

#endif /* HILBOX_REGS_H */
