/*
 * hilbox-pci: a PCI device for driver testing — a read-only framebuffer BAR holding a
 * continuously changing, deterministic rgb24 picture, and a mouse event source with a FIFO,
 * sequence numbers and counted overflow.
 *
 * The contract is qemu-device/SPEC.md in the hilbox repository; section numbers below (§)
 * refer to it. Change the spec first, then this file. Every number of the contract (PCI IDs,
 * register offsets and bits, record layouts, property limits and defaults) comes from
 * hilbox_regs.h, shared with the guest drivers (guest-driver/include/ in the repository,
 * include/hw/misc/ in the QEMU tree); test/unit/contract.test.ts checks it against the spec.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "qemu/module.h"
#include "qemu/host-utils.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/msi.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "chardev/char-fe.h"
#include "migration/vmstate.h"
#include "ui/input.h"
#include "qom/object.h"
#include "hw/misc/hilbox_regs.h"     /* the contract's numbers (SPEC.md), shared with the drivers */

#define TYPE_HILBOX_PCI "hilbox-pci"
OBJECT_DECLARE_SIMPLE_TYPE(HilboxState, HILBOX_PCI)

#define NS_PER_SEC              1000000000ULL

QEMU_BUILD_BUG_ON(HB_PCI_CLASS_CODE >> 8 != PCI_CLASS_DISPLAY_OTHER);
QEMU_BUILD_BUG_ON((HB_PCI_CLASS_CODE & 0xff) != 0);
QEMU_BUILD_BUG_ON(HB_EV_HEAD_WORDS * 4 != HB_EV_RECORD_SIZE);
QEMU_BUILD_BUG_ON(HB_REG_EV_HEAD + HB_EV_RECORD_SIZE > HB_REG_EV_POP);

struct HilboxState {
    PCIDevice parent_obj;

    MemoryRegion regs;
    MemoryRegion fb;

    /* Properties (§9) */
    uint32_t width;
    uint32_t height;
    uint32_t stride_prop;
    uint32_t fps;
    char *fb_mode;
    uint32_t mmio_latency_ns;
    uint32_t fifo_depth;
    uint32_t rate_hz;
    uint32_t bundle;
    CharBackend chr;
    bool input;
    bool msi;

    /* Derived at realize */
    uint32_t stride;
    uint32_t fb_bytes;
    uint64_t bar2_size;
    bool fb_mmio;
    uint8_t *fb_ptr;
    uint32_t fifo_bytes;
    QemuInputHandlerState *input_handler;

    /* Frame state (§4) */
    QEMUTimer *frame_timer;
    int64_t epoch;              /* QEMU_CLOCK_VIRTUAL at the last reset */
    uint32_t frame_seq;
    uint64_t frame_number;
    uint64_t frame_ts;
    uint64_t frames_produced;
    uint64_t fb_write_attempts;

    /* Registers */
    uint32_t control;
    uint32_t int_status;
    uint32_t int_mask;
    bool irq_level;
    uint32_t latch_off;         /* offset of a latched high word, 0 = none */
    uint32_t latch_val;

    /* Event FIFO (§5): fifo_depth records, encoded little-endian */
    uint8_t *fifo;
    uint32_t fifo_head;
    uint32_t fifo_count;
    uint64_t ev_produced;
    uint64_t ev_delivered;
    uint64_t ev_dropped;
    uint64_t feed_errors;

    /* Generator (§5.1) */
    QEMUTimer *gen_timer;
    uint64_t gen_epoch;         /* device clock when EV_ENABLE went 0->1 */
    uint64_t gen_k;             /* next packet index */

    /* Host feed reassembly (§6) */
    uint8_t feed_buf[HB_FEED_RECORD_SIZE];
    uint32_t feed_len;

    /* Input layer accumulation */
    int32_t in_dx;
    int32_t in_dy;
    int32_t in_wheel;
    uint32_t in_buttons;
    bool in_pending;
};

/* ---- time ---------------------------------------------------------------- */

static uint64_t hilbox_clock(HilboxState *s)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - s->epoch;
}

/* ceil(a * b / c) without overflow for the ranges used here */
static uint64_t muldiv_ceil(uint64_t a, uint64_t b, uint64_t c)
{
    unsigned __int128 p = (unsigned __int128)a * b;

    return (uint64_t)((p + c - 1) / c);
}

/* §4.1: t_n = ceil(n * 1e9 / fps) */
static uint64_t frame_start(HilboxState *s, uint64_t n)
{
    return muldiv_ceil(n, NS_PER_SEC, s->fps);
}

/* §4.1: n = floor(t * fps / 1e9) */
static uint64_t frame_at(HilboxState *s, uint64_t t)
{
    return muldiv64(t, s->fps, NS_PER_SEC);
}

/* ---- interrupts (§7) ----------------------------------------------------- */

static void hilbox_update_irq(HilboxState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool level = (s->int_status & s->int_mask) != 0;

    if (msi_enabled(pdev)) {
        if (level && !s->irq_level) {
            msi_notify(pdev, 0);
        }
    } else {
        pci_set_irq(pdev, level);
    }
    s->irq_level = level;
}

/* ---- framebuffer (§4) ---------------------------------------------------- */

/* §4.2: byte at BAR2 offset @off of frame @n */
static uint8_t hilbox_fb_byte(HilboxState *s, uint64_t n, uint64_t off)
{
    uint64_t y, rem, x;

    if (off >= s->fb_bytes) {
        return 0;
    }
    y = off / s->stride;
    rem = off % s->stride;
    if (rem >= 3ULL * s->width) {
        return 0;
    }
    x = rem / 3;
    switch (rem % 3) {
    case 0:
        return (uint8_t)(x + n);
    case 1:
        return (uint8_t)(y + n);
    default:
        return (uint8_t)(x ^ y ^ (n >> 8));
    }
}

static void hilbox_render(HilboxState *s, uint64_t n)
{
    s->frame_seq++;             /* odd: rewrite in progress (§4.3) */
    smp_wmb();
    if (!s->fb_mmio) {
        uint8_t hi = (uint8_t)(n >> 8);
        uint32_t x, y;

        for (y = 0; y < s->height; y++) {
            uint8_t *row = s->fb_ptr + (uint64_t)y * s->stride;
            uint8_t g = (uint8_t)(y + n);
            uint8_t yb = (uint8_t)y ^ hi;

            for (x = 0; x < s->width; x++) {
                row[3 * x] = (uint8_t)(x + n);
                row[3 * x + 1] = g;
                row[3 * x + 2] = (uint8_t)x ^ yb;
            }
        }
    }
    s->frame_number = n;
    s->frame_ts = frame_start(s, n);
    s->frames_produced++;
    smp_wmb();
    s->frame_seq++;             /* even: frame complete */
}

static void hilbox_frame_tick(void *opaque)
{
    HilboxState *s = opaque;
    uint64_t n = frame_at(s, hilbox_clock(s));

    if (n != s->frame_number) {
        hilbox_render(s, n);
    }
    timer_mod(s->frame_timer, s->epoch + frame_start(s, n + 1));
}

static uint64_t hilbox_fb_read(void *opaque, hwaddr addr, unsigned size)
{
    HilboxState *s = opaque;
    uint64_t val = 0;
    unsigned i;

    /* Only reached in fb-mode=mmio: in direct mode reads never trap. */
    for (i = 0; i < size; i++) {
        val |= (uint64_t)hilbox_fb_byte(s, s->frame_number, addr + i) << (8 * i);
    }
    if (s->mmio_latency_ns) {
        int64_t until = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + s->mmio_latency_ns;

        while (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) < until) {
            /* mimic a PCIe read round trip */
        }
    }
    return val;
}

static void hilbox_fb_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    HilboxState *s = opaque;

    /* §4.4: the framebuffer is read-only; count the attempt, change nothing. */
    s->fb_write_attempts++;
}

static const MemoryRegionOps hilbox_fb_ops = {
    .read = hilbox_fb_read,
    .write = hilbox_fb_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8, .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 8, .unaligned = true },
};

/* ---- event FIFO (§5) ----------------------------------------------------- */

static uint8_t *fifo_slot(HilboxState *s, uint32_t index)
{
    return s->fifo + (uint64_t)(index % s->fifo_depth) * HB_EV_RECORD_SIZE;
}

static void hilbox_push_event(HilboxState *s, uint64_t ts, int dx, int dy, int wheel,
                              uint8_t buttons, uint8_t source, uint8_t flags)
{
    uint64_t seq = ++s->ev_produced;
    uint8_t *rec;

    if (!(s->control & HB_CONTROL_EV_ENABLE)) {
        s->ev_dropped++;
        return;
    }
    if (s->fifo_count == s->fifo_depth) {
        s->ev_dropped++;
        s->int_status |= HB_INT_EV_OVERFLOW;
        hilbox_update_irq(s);
        return;
    }
    rec = fifo_slot(s, s->fifo_head + s->fifo_count);
    stq_le_p(rec + HB_EV_OFF_SEQ, seq);
    stq_le_p(rec + HB_EV_OFF_TIMESTAMP, ts);
    stw_le_p(rec + HB_EV_OFF_DX, (uint16_t)(int16_t)dx);
    stw_le_p(rec + HB_EV_OFF_DY, (uint16_t)(int16_t)dy);
    rec[HB_EV_OFF_WHEEL] = (uint8_t)(int8_t)wheel;
    rec[HB_EV_OFF_BUTTONS] = buttons;
    rec[HB_EV_OFF_SOURCE] = source;
    rec[HB_EV_OFF_FLAGS] = flags;
    s->fifo_count++;
    s->int_status |= HB_INT_EV_READY;
    hilbox_update_irq(s);
}

static void hilbox_pop_event(HilboxState *s)
{
    if (s->fifo_count == 0) {
        return;
    }
    s->fifo_head = (s->fifo_head + 1) % s->fifo_depth;
    s->fifo_count--;
    s->ev_delivered++;
}

/* ---- generator (§5.1) ---------------------------------------------------- */

/* device-clock timestamp of generator packet k */
static uint64_t gen_packet_ts(HilboxState *s, uint64_t k)
{
    return s->gen_epoch + muldiv_ceil(k + 1, NS_PER_SEC, s->rate_hz);
}

static void hilbox_gen_schedule(HilboxState *s)
{
    timer_mod(s->gen_timer, s->epoch + gen_packet_ts(s, s->gen_k + s->bundle - 1));
}

static void hilbox_gen_tick(void *opaque)
{
    HilboxState *s = opaque;
    uint64_t now = hilbox_clock(s);

    while (gen_packet_ts(s, s->gen_k + s->bundle - 1) <= now) {
        uint32_t i;

        for (i = 0; i < s->bundle; i++) {
            uint64_t k = s->gen_k + i;

            hilbox_push_event(s, gen_packet_ts(s, k), (int)(k % 7) - 3, (int)(k % 5) - 2,
                              k % 64 == 63 ? 1 : 0, (k >> 10) & 1, HB_EV_SOURCE_GENERATOR,
                              i == s->bundle - 1 ? HB_EV_FLAG_END_OF_REPORT : 0);
        }
        s->gen_k += s->bundle;
    }
    hilbox_gen_schedule(s);
}

static void hilbox_set_control(HilboxState *s, uint32_t val)
{
    bool was = s->control & HB_CONTROL_EV_ENABLE;
    bool now = val & HB_CONTROL_EV_ENABLE;

    s->control = val & HB_CONTROL_EV_ENABLE;
    if (s->rate_hz && now && !was) {
        s->gen_epoch = hilbox_clock(s);
        s->gen_k = 0;
        hilbox_gen_schedule(s);
    } else if (!now && was) {
        timer_del(s->gen_timer);
    }
}

/* ---- reset (§8) ---------------------------------------------------------- */

static void hilbox_reset_state(HilboxState *s)
{
    timer_del(s->frame_timer);
    timer_del(s->gen_timer);
    s->epoch = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->control = 0;
    s->int_status = 0;
    s->int_mask = 0;
    hilbox_update_irq(s);
    s->latch_off = 0;
    s->fifo_head = 0;
    s->fifo_count = 0;
    s->ev_produced = 0;
    s->ev_delivered = 0;
    s->ev_dropped = 0;
    s->feed_errors = 0;
    s->feed_len = 0;
    s->gen_epoch = 0;
    s->gen_k = 0;
    s->in_dx = s->in_dy = s->in_wheel = 0;
    s->in_buttons = 0;
    s->in_pending = false;
    s->fb_write_attempts = 0;
    s->frames_produced = 0;
    s->frame_seq = 0;
    hilbox_render(s, 0);
    timer_mod(s->frame_timer, s->epoch + frame_start(s, 1));
}

static void hilbox_qdev_reset(DeviceState *dev)
{
    hilbox_reset_state(HILBOX_PCI(dev));
}

/* ---- registers (§3) ------------------------------------------------------ */

static bool reg_is64(hwaddr off)
{
    switch (off) {
    case HB_REG_FRAME_NUMBER:
    case HB_REG_FRAME_TIMESTAMP:
    case HB_REG_DEVICE_CLOCK:
    case HB_REG_FB_WRITE_ATTEMPTS:
    case HB_REG_FRAMES_PRODUCED:
    case HB_REG_EV_PRODUCED:
    case HB_REG_EV_DELIVERED:
    case HB_REG_EV_DROPPED:
        return true;
    default:
        return false;
    }
}

static uint64_t hilbox_reg64(HilboxState *s, hwaddr off)
{
    switch (off) {
    case HB_REG_FRAME_NUMBER:
        return s->frame_number;
    case HB_REG_FRAME_TIMESTAMP:
        return s->frame_ts;
    case HB_REG_DEVICE_CLOCK:
        return hilbox_clock(s);
    case HB_REG_FB_WRITE_ATTEMPTS:
        return s->fb_write_attempts;
    case HB_REG_FRAMES_PRODUCED:
        return s->frames_produced;
    case HB_REG_EV_PRODUCED:
        return s->ev_produced;
    case HB_REG_EV_DELIVERED:
        return s->ev_delivered;
    case HB_REG_EV_DROPPED:
        return s->ev_dropped;
    default:
        g_assert_not_reached();
    }
}

static uint32_t hilbox_caps(HilboxState *s)
{
    uint32_t caps = HB_CAP_FB | HB_CAP_MOUSE;

    if (msi_present(PCI_DEVICE(s))) {
        caps |= HB_CAP_MSI;
    }
    if (qemu_chr_fe_backend_connected(&s->chr)) {
        caps |= HB_CAP_FEED;
    }
    if (s->input) {
        caps |= HB_CAP_INPUT;
    }
    if (s->rate_hz) {
        caps |= HB_CAP_GEN;
    }
    if (s->fb_mmio) {
        caps |= HB_CAP_FB_MMIO;
    }
    return caps;
}

/* One aligned 32-bit register read, with the 64-bit latch of §3. */
static uint32_t hilbox_read32(HilboxState *s, hwaddr off)
{
    if (reg_is64(off)) {
        uint64_t v = hilbox_reg64(s, off);

        s->latch_off = off + 4;
        s->latch_val = v >> 32;
        return (uint32_t)v;
    }
    if (off >= 4 && reg_is64(off - 4)) {
        if (s->latch_off == off) {
            s->latch_off = 0;
            return s->latch_val;
        }
        return hilbox_reg64(s, off - 4) >> 32;
    }
    if (off >= HB_REG_EV_HEAD && off < HB_REG_EV_HEAD + HB_EV_RECORD_SIZE) {
        return s->fifo_count ? ldl_le_p(fifo_slot(s, s->fifo_head) + (off - HB_REG_EV_HEAD)) : 0;
    }

    switch (off) {
    case HB_REG_ID:
        return HB_ID_MAGIC;
    case HB_REG_VERSION:
        return HB_VERSION;
    case HB_REG_CAPS:
        return hilbox_caps(s);
    case HB_REG_CONTROL:
        return s->control;
    case HB_REG_WIDTH:
        return s->width;
    case HB_REG_HEIGHT:
        return s->height;
    case HB_REG_STRIDE:
        return s->stride;
    case HB_REG_FORMAT:
        return HB_FORMAT_RGB24;
    case HB_REG_FPS:
        return s->fps;
    case HB_REG_FB_BYTES:
        return s->fb_bytes;
    case HB_REG_FB_MODE:
        return s->fb_mmio ? HB_FB_MODE_MMIO : HB_FB_MODE_DIRECT;
    case HB_REG_MMIO_LATENCY_NS:
        return s->mmio_latency_ns;
    case HB_REG_FRAME_SEQ:
        return s->frame_seq;
    case HB_REG_EV_COUNT:
        return s->fifo_count;
    case HB_REG_EV_FIFO_DEPTH:
        return s->fifo_depth;
    case HB_REG_EV_RATE_HZ:
        return s->rate_hz;
    case HB_REG_EV_BUNDLE:
        return s->bundle;
    case HB_REG_FEED_ERRORS:
        return (uint32_t)MIN(s->feed_errors, UINT32_MAX);
    case HB_REG_INT_STATUS:
        return s->int_status;
    case HB_REG_INT_MASK:
        return s->int_mask;
    default:
        return 0;
    }
}

static void hilbox_write32(HilboxState *s, hwaddr off, uint32_t val)
{
    switch (off) {
    case HB_REG_CONTROL:
        if (val & HB_CONTROL_RESET) {
            hilbox_reset_state(s);
        } else {
            hilbox_set_control(s, val);
        }
        break;
    case HB_REG_EV_POP:
        hilbox_pop_event(s);
        break;
    case HB_REG_INT_MASK:
        s->int_mask = val & HB_INT_ALL;
        hilbox_update_irq(s);
        break;
    case HB_REG_INT_ACK:
        s->int_status &= ~val;
        hilbox_update_irq(s);
        if (s->fifo_count) {
            /* records remain: re-assert, which is a new edge for MSI (§7) */
            s->int_status |= HB_INT_EV_READY;
            hilbox_update_irq(s);
        }
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "hilbox-pci: write 0x%x to read-only or undefined "
                      "register 0x%" HWADDR_PRIx "\n", val, off);
        break;
    }
}

static uint64_t hilbox_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    HilboxState *s = opaque;

    if (size == 4 && !(addr & 3)) {
        return hilbox_read32(s, addr);
    }
    if (size == 8 && reg_is64(addr)) {
        s->latch_off = 0;
        return hilbox_reg64(s, addr);
    }
    qemu_log_mask(LOG_GUEST_ERROR, "hilbox-pci: bad register read size %u at 0x%"
                  HWADDR_PRIx "\n", size, addr);
    return 0;
}

static void hilbox_regs_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    HilboxState *s = opaque;

    if (size == 4 && !(addr & 3)) {
        hilbox_write32(s, addr, val);
    } else {
        /* no register is 64-bit writable (§3) */
        qemu_log_mask(LOG_GUEST_ERROR, "hilbox-pci: bad register write size %u at 0x%"
                      HWADDR_PRIx "\n", size, addr);
    }
}

static const MemoryRegionOps hilbox_regs_ops = {
    .read = hilbox_regs_read,
    .write = hilbox_regs_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8, .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 8, .unaligned = true },
};

/* ---- host feed (§6) ------------------------------------------------------ */

static int hilbox_feed_can_receive(void *opaque)
{
    return 4096;
}

static void hilbox_feed_receive(void *opaque, const uint8_t *buf, int size)
{
    HilboxState *s = opaque;
    int i;

    for (i = 0; i < size; i++) {
        s->feed_buf[s->feed_len++] = buf[i];
        /* resynchronise on the magic, one byte at a time */
        while (s->feed_len >= 4 && ldl_le_p(s->feed_buf + HB_FEED_OFF_MAGIC) != HB_FEED_MAGIC) {
            memmove(s->feed_buf, s->feed_buf + 1, --s->feed_len);
            s->feed_errors++;
        }
        if (s->feed_len == HB_FEED_RECORD_SIZE) {
            const uint8_t *r = s->feed_buf;

            hilbox_push_event(s, hilbox_clock(s), (int16_t)lduw_le_p(r + HB_FEED_OFF_DX),
                              (int16_t)lduw_le_p(r + HB_FEED_OFF_DY),
                              (int8_t)r[HB_FEED_OFF_WHEEL], r[HB_FEED_OFF_BUTTONS],
                              HB_EV_SOURCE_FEED, r[HB_FEED_OFF_FLAGS] & HB_EV_FLAG_END_OF_REPORT);
            s->feed_len = 0;
        }
    }
}

/* ---- QEMU input layer (§5.1) --------------------------------------------- */

/* §5 buttons bit for a QEMU button, 0 if the record has no bit for it */
static uint32_t button_bit(InputButton button)
{
    switch (button) {
    case INPUT_BUTTON_LEFT:
        return HB_EV_BUTTON_LEFT;
    case INPUT_BUTTON_RIGHT:
        return HB_EV_BUTTON_RIGHT;
    case INPUT_BUTTON_MIDDLE:
        return HB_EV_BUTTON_MIDDLE;
    case INPUT_BUTTON_SIDE:
        return HB_EV_BUTTON_SIDE;
    case INPUT_BUTTON_EXTRA:
        return HB_EV_BUTTON_EXTRA;
    default:
        return 0;
    }
}

static void hilbox_input_event(DeviceState *dev, QemuConsole *src, InputEvent *evt)
{
    HilboxState *s = HILBOX_PCI(dev);

    switch (evt->type) {
    case INPUT_EVENT_KIND_REL: {
        InputMoveEvent *move = evt->u.rel.data;

        if (move->axis == INPUT_AXIS_X) {
            s->in_dx += move->value;
        } else if (move->axis == INPUT_AXIS_Y) {
            s->in_dy += move->value;
        }
        s->in_pending = true;
        break;
    }
    case INPUT_EVENT_KIND_BTN: {
        InputBtnEvent *btn = evt->u.btn.data;
        uint32_t bit = button_bit(btn->button);

        if (btn->button == INPUT_BUTTON_WHEEL_UP || btn->button == INPUT_BUTTON_WHEEL_DOWN) {
            if (btn->down) {
                s->in_wheel += btn->button == INPUT_BUTTON_WHEEL_UP ? 1 : -1;
            }
        } else if (bit) {
            if (btn->down) {
                s->in_buttons |= bit;
            } else {
                s->in_buttons &= ~bit;
            }
        } else {
            break;
        }
        s->in_pending = true;
        break;
    }
    default:
        break;
    }
}

static void hilbox_input_sync(DeviceState *dev)
{
    HilboxState *s = HILBOX_PCI(dev);

    if (!s->in_pending) {
        return;
    }
    hilbox_push_event(s, hilbox_clock(s), MIN(MAX(s->in_dx, INT16_MIN), INT16_MAX),
                      MIN(MAX(s->in_dy, INT16_MIN), INT16_MAX),
                      MIN(MAX(s->in_wheel, INT8_MIN), INT8_MAX), s->in_buttons,
                      HB_EV_SOURCE_INPUT, HB_EV_FLAG_END_OF_REPORT);
    s->in_dx = s->in_dy = s->in_wheel = 0;
    s->in_pending = false;
}

static QemuInputHandler hilbox_input_handler = {
    .name  = "hilbox-pci mouse",
    .mask  = INPUT_EVENT_MASK_BTN | INPUT_EVENT_MASK_REL,
    .event = hilbox_input_event,
    .sync  = hilbox_input_sync,
};

/* ---- realize / unrealize ------------------------------------------------- */

static bool check_range(Error **errp, const char *name, uint32_t val, uint32_t lo,
                        uint32_t hi)
{
    if (val < lo || val > hi) {
        error_setg(errp, "hilbox-pci: property '%s' is %u: allowed %u..%u", name, val, lo, hi);
        return false;
    }
    return true;
}

static bool hilbox_validate(HilboxState *s, Error **errp)
{
    uint64_t bytes;

    if (!check_range(errp, "width", s->width, HB_PROP_WIDTH_MIN, HB_PROP_WIDTH_MAX) ||
        !check_range(errp, "height", s->height, HB_PROP_HEIGHT_MIN, HB_PROP_HEIGHT_MAX) ||
        !check_range(errp, "fps", s->fps, HB_PROP_FPS_MIN, HB_PROP_FPS_MAX) ||
        !check_range(errp, "mmio-latency-ns", s->mmio_latency_ns,
                     HB_PROP_MMIO_LATENCY_NS_MIN, HB_PROP_MMIO_LATENCY_NS_MAX) ||
        !check_range(errp, "fifo-depth", s->fifo_depth,
                     HB_PROP_FIFO_DEPTH_MIN, HB_PROP_FIFO_DEPTH_MAX) ||
        !check_range(errp, "mouse-bundle", s->bundle,
                     HB_PROP_MOUSE_BUNDLE_MIN, HB_PROP_MOUSE_BUNDLE_MAX)) {
        return false;
    }
    if (s->rate_hz != 0 && (s->rate_hz < HB_PROP_MOUSE_RATE_HZ_MIN_NONZERO ||
                            s->rate_hz > HB_PROP_MOUSE_RATE_HZ_MAX)) {
        error_setg(errp, "hilbox-pci: property 'mouse-rate-hz' is %u: allowed 0 (no "
                   "generator) or %u..%u", s->rate_hz, HB_PROP_MOUSE_RATE_HZ_MIN_NONZERO,
                   HB_PROP_MOUSE_RATE_HZ_MAX);
        return false;
    }
    if (!s->fb_mode) {
        s->fb_mmio = HB_PROP_FB_MODE_DEFAULT == HB_FB_MODE_MMIO;
    } else if (!strcmp(s->fb_mode, "direct")) {
        s->fb_mmio = false;
    } else if (!strcmp(s->fb_mode, "mmio")) {
        s->fb_mmio = true;
    } else {
        error_setg(errp, "hilbox-pci: property 'fb-mode' is '%s': allowed 'direct', 'mmio'",
                   s->fb_mode);
        return false;
    }
    if (s->mmio_latency_ns && !s->fb_mmio) {
        error_setg(errp, "hilbox-pci: property 'mmio-latency-ns' is %u: allowed only 0 "
                   "unless fb-mode=mmio", s->mmio_latency_ns);
        return false;
    }
    s->stride = s->stride_prop ? s->stride_prop : HB_RGB24_BYTES_PER_PIXEL * s->width;
    if (s->stride_prop && (s->stride_prop < HB_RGB24_BYTES_PER_PIXEL * s->width ||
                           s->stride_prop > HB_PROP_STRIDE_MAX)) {
        error_setg(errp, "hilbox-pci: property 'stride' is %u: allowed 0 (= 3 x width) or "
                   "%u..%u", s->stride_prop, HB_RGB24_BYTES_PER_PIXEL * s->width,
                   HB_PROP_STRIDE_MAX);
        return false;
    }
    bytes = (uint64_t)s->stride * s->height;
    if (bytes > HB_FB_MAX_BYTES) {
        error_setg(errp, "hilbox-pci: property 'stride' x 'height' is %" PRIu64 " bytes: "
                   "allowed up to %u MiB", bytes, HB_FB_MAX_BYTES / (unsigned)MiB);
        return false;
    }
    s->fb_bytes = bytes;
    s->bar2_size = pow2ceil(MAX(bytes, HB_FB_BAR_MIN_SIZE));
    return true;
}

static void hilbox_realize(PCIDevice *pdev, Error **errp)
{
    HilboxState *s = HILBOX_PCI(pdev);
    Error *err = NULL;

    if (!hilbox_validate(s, errp)) {
        return;
    }

    pci_config_set_interrupt_pin(pdev->config, HB_PCI_INTERRUPT_PIN);
    if (pci_is_express(pdev) && pcie_endpoint_cap_init(pdev, 0x80) < 0) {
        error_setg(errp, "hilbox-pci: cannot add the PCI Express capability");
        return;
    }
    if (s->msi && msi_init(pdev, 0, HB_PCI_MSI_VECTORS, true, false, &err) < 0) {
        /* platform without working MSI: INTx only (§1) */
        warn_report_err(err);
        err = NULL;
    }

    memory_region_init_io(&s->regs, OBJECT(s), &hilbox_regs_ops, s, "hilbox-regs", HB_REGS_SIZE);
    pci_register_bar(pdev, HB_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->regs);

    memory_region_init_rom_device(&s->fb, OBJECT(s), &hilbox_fb_ops, s, "hilbox-fb",
                                  s->bar2_size, &err);
    if (err) {
        error_propagate(errp, err);
        goto fail_msi;
    }
    s->fb_ptr = memory_region_get_ram_ptr(&s->fb);
    memset(s->fb_ptr, 0, s->bar2_size);
    if (s->fb_mmio) {
        memory_region_rom_device_set_romd(&s->fb, false);   /* every access traps */
    }
    pci_register_bar(pdev, HB_BAR_FB, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     (s->fb_mmio ? 0 : PCI_BASE_ADDRESS_MEM_PREFETCH), &s->fb);

    s->fifo_bytes = s->fifo_depth * HB_EV_RECORD_SIZE;
    s->fifo = g_malloc0(s->fifo_bytes);
    s->frame_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_frame_tick, s);
    s->gen_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_gen_tick, s);

    if (qemu_chr_fe_backend_connected(&s->chr)) {
        qemu_chr_fe_set_handlers(&s->chr, hilbox_feed_can_receive, hilbox_feed_receive,
                                 NULL, NULL, s, NULL, true);
    }
    if (s->input) {
        s->input_handler = qemu_input_handler_register(DEVICE(s), &hilbox_input_handler);
        qemu_input_handler_activate(s->input_handler);
    }
    hilbox_reset_state(s);
    return;

fail_msi:
    msi_uninit(pdev);
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
}

static void hilbox_unrealize(PCIDevice *pdev)
{
    HilboxState *s = HILBOX_PCI(pdev);

    if (s->input_handler) {
        qemu_input_handler_unregister(s->input_handler);
        s->input_handler = NULL;
    }
    qemu_chr_fe_deinit(&s->chr, false);
    timer_free(s->gen_timer);
    timer_free(s->frame_timer);
    g_free(s->fifo);
    s->fifo = NULL;
    msi_uninit(pdev);
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
}

/* ---- QOM ----------------------------------------------------------------- */

static const VMStateDescription vmstate_hilbox = {
    .name = TYPE_HILBOX_PCI,
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, HilboxState),
        VMSTATE_INT64(epoch, HilboxState),
        VMSTATE_UINT32(frame_seq, HilboxState),
        VMSTATE_UINT64(frame_number, HilboxState),
        VMSTATE_UINT64(frame_ts, HilboxState),
        VMSTATE_UINT64(frames_produced, HilboxState),
        VMSTATE_UINT64(fb_write_attempts, HilboxState),
        VMSTATE_TIMER_PTR(frame_timer, HilboxState),
        VMSTATE_UINT32(control, HilboxState),
        VMSTATE_UINT32(int_status, HilboxState),
        VMSTATE_UINT32(int_mask, HilboxState),
        VMSTATE_BOOL(irq_level, HilboxState),
        VMSTATE_UINT32(latch_off, HilboxState),
        VMSTATE_UINT32(latch_val, HilboxState),
        VMSTATE_VBUFFER_UINT32(fifo, HilboxState, 1, NULL, fifo_bytes),
        VMSTATE_UINT32(fifo_head, HilboxState),
        VMSTATE_UINT32(fifo_count, HilboxState),
        VMSTATE_UINT64(ev_produced, HilboxState),
        VMSTATE_UINT64(ev_delivered, HilboxState),
        VMSTATE_UINT64(ev_dropped, HilboxState),
        VMSTATE_UINT64(feed_errors, HilboxState),
        VMSTATE_TIMER_PTR(gen_timer, HilboxState),
        VMSTATE_UINT64(gen_epoch, HilboxState),
        VMSTATE_UINT64(gen_k, HilboxState),
        VMSTATE_UINT8_ARRAY(feed_buf, HilboxState, HB_FEED_RECORD_SIZE),
        VMSTATE_UINT32(feed_len, HilboxState),
        VMSTATE_INT32(in_dx, HilboxState),
        VMSTATE_INT32(in_dy, HilboxState),
        VMSTATE_INT32(in_wheel, HilboxState),
        VMSTATE_UINT32(in_buttons, HilboxState),
        VMSTATE_BOOL(in_pending, HilboxState),
        VMSTATE_END_OF_LIST()
    }
};

static Property hilbox_properties[] = {
    DEFINE_PROP_UINT32("width", HilboxState, width, HB_PROP_WIDTH_DEFAULT),
    DEFINE_PROP_UINT32("height", HilboxState, height, HB_PROP_HEIGHT_DEFAULT),
    DEFINE_PROP_UINT32("stride", HilboxState, stride_prop, HB_PROP_STRIDE_DEFAULT),
    DEFINE_PROP_UINT32("fps", HilboxState, fps, HB_PROP_FPS_DEFAULT),
    DEFINE_PROP_STRING("fb-mode", HilboxState, fb_mode),   /* unset = HB_PROP_FB_MODE_DEFAULT */
    DEFINE_PROP_UINT32("mmio-latency-ns", HilboxState, mmio_latency_ns,
                       HB_PROP_MMIO_LATENCY_NS_DEFAULT),
    DEFINE_PROP_UINT32("fifo-depth", HilboxState, fifo_depth, HB_PROP_FIFO_DEPTH_DEFAULT),
    DEFINE_PROP_UINT32("mouse-rate-hz", HilboxState, rate_hz, HB_PROP_MOUSE_RATE_HZ_DEFAULT),
    DEFINE_PROP_UINT32("mouse-bundle", HilboxState, bundle, HB_PROP_MOUSE_BUNDLE_DEFAULT),
    DEFINE_PROP_CHR("chardev", HilboxState, chr),
    DEFINE_PROP_BOOL("input", HilboxState, input, HB_PROP_INPUT_DEFAULT),
    DEFINE_PROP_BOOL("msi", HilboxState, msi, HB_PROP_MSI_DEFAULT),
    DEFINE_PROP_END_OF_LIST(),
};

static void hilbox_instance_init(Object *obj)
{
    HilboxState *s = HILBOX_PCI(obj);

    /* Counters for qom-get (§9) */
    object_property_add_uint64_ptr(obj, "frames-produced", &s->frames_produced,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "frame-number", &s->frame_number, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "fb-write-attempts", &s->fb_write_attempts,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-produced", &s->ev_produced,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-delivered", &s->ev_delivered,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-dropped", &s->ev_dropped, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "feed-errors", &s->feed_errors, OBJ_PROP_FLAG_READ);
}

static void hilbox_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = hilbox_realize;
    k->exit = hilbox_unrealize;
    k->vendor_id = HB_PCI_VENDOR_ID;
    k->device_id = HB_PCI_DEVICE_ID;
    k->revision = HB_PCI_REVISION;
    k->class_id = HB_PCI_CLASS_CODE >> 8;       /* base class + subclass; prog-if is 0 */
    k->subsystem_vendor_id = HB_PCI_SUBSYSTEM_VENDOR_ID;
    k->subsystem_id = HB_PCI_SUBSYSTEM_ID;
    dc->desc = "hilbox test device: read-only framebuffer and mouse event source";
    dc->reset = hilbox_qdev_reset;
    dc->vmsd = &vmstate_hilbox;
    device_class_set_props(dc, hilbox_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo hilbox_info = {
    .name          = TYPE_HILBOX_PCI,
    .parent        = TYPE_PCI_DEVICE,
    .instance_size = sizeof(HilboxState),
    .instance_init = hilbox_instance_init,
    .class_init    = hilbox_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void hilbox_register_types(void)
{
    type_register_static(&hilbox_info);
}

type_init(hilbox_register_types)
