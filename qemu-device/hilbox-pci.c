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
#include "qemu/main-loop.h"
#include "qemu/processor.h"
#include "qemu/thread.h"
#include "qemu/atomic.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "sysemu/cpu-timers.h"
#include "hw/pci/pci.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_port.h"
#include "hw/hotplug.h"
#include "qapi/visitor.h"
#include "qemu/error-report.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "chardev/char-fe.h"
#include "migration/vmstate.h"
#include "ui/input.h"
#include "qom/object.h"
#include "hw/misc/hilbox_regs.h"     /* the contract's numbers (SPEC.md), shared with the drivers */
#if defined(CONFIG_CPUID_H) && (defined(__x86_64__) || defined(__i386__))
#include "qemu/cpuid.h"             /* the render's stores: AVX2, else rep movsb (ERMS) */
#include <immintrin.h>
#define HILBOX_REP_MOVSB 1
#define HILBOX_AVX2 1
#endif

#define TYPE_HILBOX_PCI "hilbox-pci"
OBJECT_DECLARE_SIMPLE_TYPE(HilboxState, HILBOX_PCI)

#define NS_PER_SEC              1000000000ULL

/*
 * Direct mode keeps the picture in host RAM, written by the device's render thread (§4.1).
 * Every byte of §4.2 depends on x only modulo 256, so a line is its period of 256 pixels
 * repeated.
 */
#define HILBOX_PERIOD_PIXELS        256
#define HILBOX_PERIOD_BYTES         (HB_RGB24_BYTES_PER_PIXEL * HILBOX_PERIOD_PIXELS)

/* The 64-bit registers, in latch order (§3) */
#define HILBOX_NUM_REG64        8

#define HILBOX_EV_BUTTONS_ALL   (HB_EV_BUTTON_LEFT | HB_EV_BUTTON_RIGHT | HB_EV_BUTTON_MIDDLE | \
                                 HB_EV_BUTTON_SIDE | HB_EV_BUTTON_EXTRA)

QEMU_BUILD_BUG_ON(HB_PCI_CLASS_CODE >> 8 != PCI_CLASS_DISPLAY_OTHER);
QEMU_BUILD_BUG_ON((HB_PCI_CLASS_CODE & 0xff) != 0);
QEMU_BUILD_BUG_ON(HB_EV_HEAD_WORDS * 4 != HB_EV_RECORD_SIZE);
QEMU_BUILD_BUG_ON(HB_REG_EV_HEAD + HB_EV_RECORD_SIZE > HB_REG_EV_POP);

/* §11: the faults, in the order of the SPEC table */
typedef enum {
    HILBOX_FAULT_NONE,
    HILBOX_FAULT_LINK_DOWN,
    HILBOX_FAULT_SURPRISE_REMOVAL,
    HILBOX_FAULT_IRQ_LOST,
    HILBOX_FAULT_SPURIOUS_IRQ,
    HILBOX_FAULT_IRQ_STORM,
    HILBOX_FAULT_FIFO_BURST,
    HILBOX_FAULT_MMIO_SPIKE,
    HILBOX_FAULT_FRAME_STALL,
    HILBOX_FAULT_FRAME_STALL_ODD,
    HILBOX_FAULT_BIT_FLIP,
    HILBOX_FAULT__MAX,
} HilboxFault;

static const char *const hilbox_fault_names[HILBOX_FAULT__MAX] = {
    [HILBOX_FAULT_NONE] = "none",
    [HILBOX_FAULT_LINK_DOWN] = "link-down",
    [HILBOX_FAULT_SURPRISE_REMOVAL] = "surprise-removal",
    [HILBOX_FAULT_IRQ_LOST] = "irq-lost",
    [HILBOX_FAULT_SPURIOUS_IRQ] = "spurious-irq",
    [HILBOX_FAULT_IRQ_STORM] = "irq-storm",
    [HILBOX_FAULT_FIFO_BURST] = "fifo-burst",
    [HILBOX_FAULT_MMIO_SPIKE] = "mmio-spike",
    [HILBOX_FAULT_FRAME_STALL] = "frame-stall",
    [HILBOX_FAULT_FRAME_STALL_ODD] = "frame-stall-odd",
    [HILBOX_FAULT_BIT_FLIP] = "bit-flip",
};

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
    uint8_t *fb_ptr;            /* direct mode: BAR2's host RAM; NULL in mmio mode */
    uint32_t fifo_bytes;
    QemuInputHandlerState *input_handler;

    /*
     * Frame state (§4). Who owns what:
     *
     * Published frame (frame_seq, frame_number, frame_ts, frames_produced): written only with
     * render_lock held, with qatomic stores, frame_seq last with release order (§4.3) — by the
     * render thread when a render starts and completes, by the frame timer in mmio mode (no
     * thread), and by the main loop only after cancelling the render in flight (reset,
     * post_load: hilbox_frames_restart). Read anywhere, without the lock, with qatomic loads
     * (frame_seq with acquire order): register reads, BAR2 reads, QOM getters.
     */
    uint32_t frame_seq;         /* 2 x frames_produced, odd while a render writes BAR2 */
    uint64_t frame_number;
    uint64_t frame_ts;          /* derived: frame_start(frame_number) */
    uint64_t frames_produced;

    /* Main loop (BQL) only */
    QEMUTimer *frame_timer;
    int64_t epoch;              /* QEMU_CLOCK_VIRTUAL at the last reset */
    uint64_t tick_n;            /* newest frame handed to the renderer (shown once rendered) */
    uint64_t fb_write_attempts;
    uint64_t mig_frame_number;  /* the stream's FRAME_NUMBER (pre_save, post_load, §10) */
    uint64_t mig_frames_produced;
    /*
     * Direct mode: the RAM holds frame frame_number, or the frame being rendered while
     * frame_seq is odd (BAR2 then maps it: ROMD mode). False after a reset or a load until the
     * thread has redrawn it; BAR2 traps meanwhile and reads are computed (§4.4). ROMD is only
     * ever toggled here, on the main loop: the thread reports a completed redraw via ready_bh.
     */
    bool fb_ram_valid;
    QEMUBH *ready_bh;

    /*
     * Render thread (direct mode only; cf. the factorial thread of hw/misc/edu.c). It sleeps
     * on render_cond until the main loop hands it a job, renders without the BQL and without
     * render_lock, and publishes with render_lock held. The fields below are protected by
     * render_lock; render_gen is also read lock-free by the thread between lines to notice a
     * cancellation.
     */
    QemuThread render_thread;
    QemuMutex render_lock;
    QemuCond render_cond;
    QemuCond render_idle;       /* icount (§4.5): the thread finished a job */
    bool render_running;        /* main loop only: the thread exists (realize .. unrealize) */
    bool render_exit;           /* unrealize: the thread ends */
    bool job_pending;           /* a job is waiting; a newer one replaces it (frames skipped) */
    bool job_show;              /* a frame render (seqlock), or a silent redraw of the RAM */
    uint64_t job_n;
    bool busy_show;             /* the thread is rendering a frame (counted by pre_save) */
    uint32_t render_gen;        /* +1 at every cancellation: the job in flight publishes nothing */
    uint32_t ready_gen;         /* render_gen of the last completed job (RAM valid, ready_bh) */
    bool rep_movsb;             /* constant from realize: hilbox_copy uses rep movsb */
    bool render_avx2;           /* constant from realize: lines are written by hilbox_line_avx2 */

    /* Registers */
    uint32_t control;
    uint32_t int_status;
    uint32_t int_mask;
    bool irq_level;

    /*
     * 64-bit latches (§3): per accessor and register, the high word latched by the last
     * low-word read. Slot i < latch_slots - 1 is vCPU cpu_index i; the last slot is every
     * accessor that is not a vCPU (qtest, the monitor, DMA). Not migrated.
     */
    unsigned latch_slots;
    uint32_t *latch_hi;         /* [latch_slots][HILBOX_NUM_REG64] */
    uint8_t *latch_valid;       /* [latch_slots]: bit r = latch_hi[.][r] is valid */

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

    /* Host feed reassembly (§6): state of the connection, never migrated */
    uint8_t feed_buf[HB_FEED_RECORD_SIZE];
    uint32_t feed_len;

    /* Input layer accumulation (§5.1): saturating sums until the next sync */
    int64_t in_dx;
    int64_t in_dy;
    int64_t in_wheel;
    uint32_t in_buttons;
    bool in_pending;

    /*
     * Faults (§11): host conditions, not device state — not reset, not migrated. link_down
     * is derived from fault (link-down, surprise-removal).
     */
    HilboxFault fault;
    bool link_down;
    uint32_t fault_delay_ms;
    uint32_t fault_period_us;
    uint32_t fault_burst;
    uint32_t fault_every;
    uint32_t fault_latency_us;
    uint32_t fault_rate;        /* bit-flip: flipped bytes per million; read by the thread */
    uint64_t faults_injected;
    uint64_t fault_accesses;    /* mmio-spike: trapping accesses counted */
    QEMUTimer *fault_timer;     /* surprise-removal: link down -> card gone */
    QEMUTimer *fault_irq_timer; /* spurious-irq: the next empty interrupt */
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

/* INT_STATUS as the guest sees it: §11 irq-storm keeps EV_READY stuck. */
static uint32_t hilbox_int_status(HilboxState *s)
{
    return s->int_status | (s->fault == HILBOX_FAULT_IRQ_STORM ? HB_INT_EV_READY : 0);
}

static void hilbox_update_irq(HilboxState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    /* §11: no message and no line while the link is down or interrupts are lost */
    bool level = (hilbox_int_status(s) & s->int_mask) != 0 && !s->link_down &&
                 s->fault != HILBOX_FAULT_IRQ_LOST;

    if (msi_enabled(pdev)) {
        if (level && !s->irq_level) {
            msi_notify(pdev, 0);
        }
        pci_set_irq(pdev, 0);       /* INTx is not used while MSI is enabled */
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

/* BAR2 in direct mode maps the RAM (true) or traps every access (false). */
/* Direct mode: guest reads go to the RAM only while it is valid and the link is up (§4.4, §11). */
static void hilbox_fb_update_romd(HilboxState *s)
{
    if (!s->fb_mmio) {
        memory_region_rom_device_set_romd(&s->fb, s->fb_ram_valid && !s->link_down);
    }
}

static void hilbox_fb_set_mapped(HilboxState *s, bool mapped)
{
    s->fb_ram_valid = mapped;
    hilbox_fb_update_romd(s);
}

/* ---- render thread (§4.1, §4.3, §4.4) ------------------------------------ */

/*
 * What a render costs. A frame is stride x height bytes of stores into memory that is mostly
 * not in the L1/L2 cache; the floor is what memset of the same bytes costs on the same memory
 * (glibc's memset of a frame is one "rep stosb" on x86). That floor depends on how much of the
 * frame is still in the L3 cache since the last render: little at 50 fps, more at 200 fps
 * (on a Zen 4 host a 1080p memset costs about 0.065 ms hot, 0.2 ms at 50 fps, 0.1 to 0.2 ms at
 * 200 fps). Whatever the render does besides storing is a fixed cost per frame on top of it,
 * so it weighs more, relative to memset, the faster the memory is: that is why the previous
 * render (the line's period built with 8-byte stores into an L1 buffer, then copied with one
 * "rep movsb" per 768 bytes) cost 1.2 times memset at 50 fps but 1.35 times at 200 fps
 * (npm run bench:device; 1.45 and 1.64 against memset's per-call median): it cost 0.15 ms
 * hot, 2.3 times memset (a string operation per 768 bytes has a start-up cost, and reading
 * back 8-byte stores with wider loads defeats store forwarding).
 *
 * So on hosts with AVX2 the line is computed and stored from registers (hilbox_line_avx2):
 * one load of the frame's line-independent pattern (in the L1 cache), one XOR with the line's
 * key and one 32-byte store per 32 bytes, nothing else. Measured with the same 1080p frame,
 * paced like the render (scripts/bench-device.ts measures both in one run): about 1.1 times
 * memset hot, 1.0 to 1.2 times at 50 and 200 fps in medians of 3 (single repeats at 200 fps
 * on a shared host up to 1.6, when the helper's buffer stayed in the L3 cache between calls and
 * the framebuffer did not, a difference not explained yet). (Non-temporal stores cost a constant
 * DRAM-speed 0.23 ms: as cheap as memset of memory that is not in the cache, 1.8 times
 * memset at 200 fps, and they would leave the frame out of the cache the guest reads it from.)
 *
 * Hosts without AVX2: the period in an L1 buffer, copied along the line, with "rep movsb"
 * where it is fast (x86 ERMS: it writes whole cache lines without reading them first; glibc's
 * memcpy of 768 bytes uses vector stores that read every destination line first).
 */
static bool hilbox_host_rep_movsb_fast(void)
{
#ifdef HILBOX_REP_MOVSB
    unsigned a, b, c, d;

    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        return b & (1u << 9);               /* CPUID.(EAX=7,ECX=0):EBX.ERMS */
    }
#endif
    return false;
}

/* AVX2 in the CPU and its YMM state saved by the OS (XCR0 bits 1 and 2), as bufferiszero.c. */
static bool hilbox_host_avx2(void)
{
#ifdef HILBOX_AVX2
    unsigned a, b, c, d, xcr0_lo, xcr0_hi;

    if (__get_cpuid_max(0, NULL) < 7) {
        return false;
    }
    __cpuid(1, a, b, c, d);
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) {
        return false;
    }
    asm("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6) != 6) {
        return false;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return b & bit_AVX2;
#else
    return false;
#endif
}

static inline void hilbox_copy(HilboxState *s, uint8_t *dst, const void *src, size_t len)
{
#ifdef HILBOX_REP_MOVSB
    if (s->rep_movsb) {
        asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
        return;
    }
#endif
    memcpy(dst, src, len);
}

#ifdef HILBOX_AVX2
/*
 * One line of @line bytes at @row: the 768-byte line-independent pattern @base (64-byte
 * aligned) XOR the line's 24-byte key @k, repeated along the line. The key as three 32-byte
 * lanes repeats every 96 bytes, which divides the period: 96 bytes a step, from registers.
 */
static void __attribute__((target("avx2")))
hilbox_line_avx2(uint8_t *row, uint32_t line, const uint8_t *base, const uint64_t *k)
{
    const __m256i k0 = _mm256_set_epi64x(k[0], k[2], k[1], k[0]);
    const __m256i k1 = _mm256_set_epi64x(k[1], k[0], k[2], k[1]);
    const __m256i k2 = _mm256_set_epi64x(k[2], k[1], k[0], k[2]);
    __m256i tail[3];
    uint32_t off, pos = 0;

    QEMU_BUILD_BUG_ON(HILBOX_PERIOD_BYTES % 96);
    for (off = 0; off + 96 <= line; off += 96) {
        const __m256i *p = (const __m256i *)(base + pos);

        _mm256_storeu_si256((__m256i *)(row + off), _mm256_xor_si256(p[0], k0));
        _mm256_storeu_si256((__m256i *)(row + off + 32), _mm256_xor_si256(p[1], k1));
        _mm256_storeu_si256((__m256i *)(row + off + 64), _mm256_xor_si256(p[2], k2));
        pos = pos + 96 == HILBOX_PERIOD_BYTES ? 0 : pos + 96;
    }
    if (off < line) {
        const __m256i *p = (const __m256i *)(base + pos);

        tail[0] = _mm256_xor_si256(p[0], k0);
        tail[1] = _mm256_xor_si256(p[1], k1);
        tail[2] = _mm256_xor_si256(p[2], k2);
        memcpy(row + off, tail, line - off);
    }
}
#endif

/*
 * Render thread: writes frame @n into BAR2's RAM (padding past 3 x width is never written, so
 * it stays 0). Line y is its 256-pixel period repeated (§4.2). R = x + n is the same on every
 * line, and G = y + n, B = x ^ y ^ (n >> 8) differ from the line-independent pattern
 * (x + n, 0, x) by XOR with the line's key (0, y + n, y ^ (n >> 8)), which repeats every 3
 * bytes, so every 24 bytes. With AVX2 the line is stored from registers (above); otherwise its
 * period is 96 word XORs into a buffer that stays in the L1 cache, then copied along the line.
 * Returns false, abandoning the frame, as soon as the job is cancelled (render_gen moved on),
 * checked before every line.
 *
 * The stores are ordinary ones or one string operation per copy: x86 may reorder the stores
 * within a string operation but not with the stores before and after it (Intel SDM 3A 8.2.4),
 * so the caller's FRAME_SEQ stores and barriers order them on every host (§4.3).
 */
static bool hilbox_render_frame(HilboxState *s, uint64_t n, uint32_t gen)
{
    /* cache-line aligned: rep movsb is slower from a misaligned source; aligned AVX2 loads */
    uint64_t base[HILBOX_PERIOD_BYTES / 8] QEMU_ALIGNED(64);
    uint64_t period[HILBOX_PERIOD_BYTES / 8] QEMU_ALIGNED(64);
    uint8_t *b = (uint8_t *)base;
    uint32_t line = HB_RGB24_BYTES_PER_PIXEL * s->width;
    uint32_t x, y, w, off;

    QEMU_BUILD_BUG_ON(HILBOX_PERIOD_BYTES % 24);
    for (x = 0; x < HILBOX_PERIOD_PIXELS; x++) {
        b[3 * x] = (uint8_t)(x + n);
        b[3 * x + 1] = 0;
        b[3 * x + 2] = (uint8_t)x;
    }
    for (y = 0; y < s->height; y++) {
        uint8_t *row = s->fb_ptr + (uint64_t)y * s->stride;
        uint8_t key[24];
        uint64_t k[3];

        if (qatomic_read(&s->render_gen) != gen) {
            return false;
        }
        for (x = 0; x < 8; x++) {
            key[3 * x] = 0;
            key[3 * x + 1] = (uint8_t)(y + n);
            key[3 * x + 2] = (uint8_t)(y ^ (n >> 8));
        }
        memcpy(k, key, sizeof(k));
#ifdef HILBOX_AVX2
        if (s->render_avx2) {
            hilbox_line_avx2(row, line, b, k);
            continue;
        }
#endif
        for (w = 0; w < HILBOX_PERIOD_BYTES / 8; w += 3) {
            period[w] = base[w] ^ k[0];
            period[w + 1] = base[w + 1] ^ k[1];
            period[w + 2] = base[w + 2] ^ k[2];
        }
        for (off = 0; off < line; off += HILBOX_PERIOD_BYTES) {
            hilbox_copy(s, row + off, period, MIN(HILBOX_PERIOD_BYTES, line - off));
        }
    }
    return true;
}

/* §11 bit-flip: places and bits that follow from the frame number (splitmix64). */
static uint64_t hilbox_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Render thread, direct mode: fault-rate per million of frame @n's visible bytes flip a bit. */
static void hilbox_flip_bits(HilboxState *s, uint64_t n)
{
    uint64_t visible = (uint64_t)HB_RGB24_BYTES_PER_PIXEL * s->width * s->height;
    uint64_t k = MAX(1, visible * qatomic_read(&s->fault_rate) / 1000000), i;

    for (i = 0; i < k; i++) {
        uint64_t h = hilbox_mix((n << 24) ^ i);
        uint64_t y = h % s->height;
        uint64_t x3 = (h >> 32) % (HB_RGB24_BYTES_PER_PIXEL * s->width);

        s->fb_ptr[y * s->stride + x3] ^= (uint8_t)(1u << (h >> 61));
    }
}

/* mmio mode: the byte at @off of frame @n, flipped with probability fault-rate per million. */
static uint8_t hilbox_fb_byte_faulty(HilboxState *s, uint64_t n, uint64_t off)
{
    uint8_t b = hilbox_fb_byte(s, n, off);
    uint64_t h;

    if (s->fault != HILBOX_FAULT_BIT_FLIP || off >= s->fb_bytes ||
        off % s->stride >= (uint64_t)HB_RGB24_BYTES_PER_PIXEL * s->width) {
        return b;
    }
    h = hilbox_mix((n << 32) ^ off);
    return h % 1000000 < s->fault_rate ? b ^ (uint8_t)(1u << (h >> 61)) : b;
}

/* §4.3, with render_lock held: a render begins; FRAME_SEQ goes odd before any byte is written. */
static void hilbox_publish_begin(HilboxState *s)
{
    qatomic_set(&s->frame_seq, qatomic_read(&s->frame_seq) + 1);
    smp_wmb();
}

/*
 * §4.3, with render_lock held: frame @n is complete. Its registers, then FRAME_SEQ even with
 * release order: a reader that acquires the even value sees the frame's bytes and registers.
 */
static void hilbox_publish_end(HilboxState *s, uint64_t n)
{
    qatomic_set_u64(&s->frame_number, n);
    qatomic_set_u64(&s->frame_ts, frame_start(s, n));
    qatomic_set_u64(&s->frames_produced, qatomic_read_u64(&s->frames_produced) + 1);
    qatomic_store_release(&s->frame_seq, qatomic_read(&s->frame_seq) + 1);
}

static void *hilbox_render_thread(void *opaque)
{
    HilboxState *s = opaque;

    qemu_mutex_lock(&s->render_lock);
    while (!s->render_exit) {
        uint64_t n;
        uint32_t gen;
        bool show, done;

        if (!s->job_pending) {
            qemu_cond_wait(&s->render_cond, &s->render_lock);
            continue;
        }
        n = s->job_n;
        show = s->job_show;
        gen = s->render_gen;
        s->job_pending = false;
        s->busy_show = show;
        if (show) {
            hilbox_publish_begin(s);
        }
        qemu_mutex_unlock(&s->render_lock);

        done = hilbox_render_frame(s, n, gen);      /* no lock held: the long part */
        if (done && qatomic_read(&s->fault) == HILBOX_FAULT_BIT_FLIP) {
            hilbox_flip_bits(s, n);                 /* §11: before it is published */
        }

        qemu_mutex_lock(&s->render_lock);
        s->busy_show = false;
        qemu_cond_broadcast(&s->render_idle);       /* §4.5: an icount frame tick waits */
        if (done && gen == s->render_gen) {
            if (show) {
                hilbox_publish_end(s, n);
            }
            if (s->ready_gen != gen) {
                /* the first complete render since the restart: BAR2 may map the RAM again */
                s->ready_gen = gen;
                qemu_bh_schedule(s->ready_bh);
            }
        }
    }
    qemu_mutex_unlock(&s->render_lock);
    return NULL;
}

/*
 * Main loop: the render thread has completed a render since the last restart, so the RAM is
 * consistent with the seqlock (frame FRAME_NUMBER, or a later frame being written while
 * FRAME_SEQ is odd): BAR2 maps it again, unless a newer restart came first.
 */
static void hilbox_ready_bh(void *opaque)
{
    HilboxState *s = opaque;
    bool ready;

    qemu_mutex_lock(&s->render_lock);
    ready = s->ready_gen == s->render_gen;
    qemu_mutex_unlock(&s->render_lock);
    if (ready && !s->fb_ram_valid) {
        hilbox_fb_set_mapped(s, true);
    }
}

/*
 * Main loop: frame @n is current at once, as if rendered, with @produced frames counted (reset
 * §8: frame 0, 1; post_load §10: the stream's). The render in flight, if any, is cancelled (it
 * stops within one line and publishes nothing; the lock is held only for bookkeeping, the
 * main loop never waits for a render). Direct mode: BAR2 traps, reads are computed from frame
 * @n, and the thread redraws the RAM; ready_bh maps it again when it is done (§4.4).
 */
static void hilbox_frames_restart(HilboxState *s, uint64_t n, uint64_t produced)
{
    if (!s->fb_mmio) {
        hilbox_fb_set_mapped(s, false);
    }
    qemu_mutex_lock(&s->render_lock);
    qatomic_set(&s->render_gen, s->render_gen + 1);
    s->job_pending = false;
    s->busy_show = false;
    qatomic_set_u64(&s->frame_number, n);
    qatomic_set_u64(&s->frame_ts, frame_start(s, n));
    qatomic_set_u64(&s->frames_produced, produced);
    qatomic_store_release(&s->frame_seq, (uint32_t)(2 * produced));
    if (!s->fb_mmio) {
        s->job_n = n;
        s->job_show = false;                /* a redraw: FRAME_SEQ stays even */
        s->job_pending = true;
        qemu_cond_signal(&s->render_cond);
    }
    qemu_mutex_unlock(&s->render_lock);
    s->tick_n = n;
}

/*
 * §4.5, with render_lock held: under icount the guest clock stands still while the frame tick
 * runs (the vCPU thread runs the virtual-clock timers itself), so waiting here for the render
 * makes frame n appear complete at t_n in guest time: no guest instruction ever sees a render
 * in progress, and what the guest measures does not depend on host scheduling. The wait is
 * host time only (one render, a fraction of a millisecond for 1920x1080). Real time: no wait.
 */
static void hilbox_icount_render_wait(HilboxState *s)
{
    if (!icount_enabled()) {
        return;
    }
    while ((s->job_pending || s->busy_show) && !s->render_exit) {
        qemu_cond_wait(&s->render_idle, &s->render_lock);
    }
}

/*
 * §4.1: at t_n frame n becomes the frame to render. The main loop only hands it over: in
 * direct mode it replaces a job still waiting (frames are skipped while a render overruns);
 * in mmio mode nothing is written and the frame is current at once.
 */
static void hilbox_frame_tick(void *opaque)
{
    HilboxState *s = opaque;
    uint64_t cur = frame_at(s, hilbox_clock(s)), n = cur;

    if (s->fault == HILBOX_FAULT_FRAME_STALL || s->fault == HILBOX_FAULT_FRAME_STALL_ODD) {
        n = s->tick_n;              /* §11: the frame engine hands nothing over */
    }
    if (n != s->tick_n) {
        s->tick_n = n;
        qemu_mutex_lock(&s->render_lock);
        if (s->fb_mmio) {
            hilbox_publish_begin(s);
            hilbox_publish_end(s, n);
        } else {
            s->job_n = n;
            s->job_show = true;
            s->job_pending = true;
            qemu_cond_signal(&s->render_cond);
            hilbox_icount_render_wait(s);
        }
        qemu_mutex_unlock(&s->render_lock);
    }
    timer_mod(s->frame_timer, s->epoch + frame_start(s, cur + 1));
}

/* Realize (direct mode): the thread, waiting for its first job. */
static void hilbox_render_start(HilboxState *s)
{
    s->rep_movsb = hilbox_host_rep_movsb_fast();
    s->render_avx2 = hilbox_host_avx2();
    s->ready_bh = qemu_bh_new_guarded(hilbox_ready_bh, s, &DEVICE(s)->mem_reentrancy_guard);
    qemu_thread_create(&s->render_thread, "hilbox-render", hilbox_render_thread, s,
                       QEMU_THREAD_JOINABLE);
    s->render_running = true;
}

/* Unrealize: cancel the render in flight, end the thread and wait for it (one line at most). */
static void hilbox_render_stop(HilboxState *s)
{
    if (!s->render_running) {
        return;
    }
    qemu_mutex_lock(&s->render_lock);
    s->render_exit = true;
    qatomic_set(&s->render_gen, s->render_gen + 1);
    qemu_cond_signal(&s->render_cond);
    qemu_mutex_unlock(&s->render_lock);
    qemu_thread_join(&s->render_thread);
    s->render_running = false;
    qemu_bh_delete(s->ready_bh);
    s->ready_bh = NULL;
}

/*
 * mmio-latency-ns (§4.4): the vCPU that read BAR2 waits here, in its own thread's loop and
 * without the global lock, before it runs on (run_on_cpu work runs with the lock held, at the
 * top of the vCPU loop, where dropping it is safe). Touches no device state.
 */
static void hilbox_mmio_stall(CPUState *cpu, run_on_cpu_data data)
{
    int64_t until = get_clock() + (int64_t)data.host_ulong;

    qemu_mutex_unlock_iothread();
    while (get_clock() < until) {
        cpu_relax();            /* a stalled PCIe read round trip */
    }
    qemu_mutex_lock_iothread();
}

/*
 * Charges @ns of read round trip to the vCPU that made the current access (§4.4, §4.5).
 * Real time: the vCPU waits @ns of host time once it leaves the access, outside the global
 * lock. Under icount the guest clock follows instructions and a host-time wait would be
 * invisible to the guest: the access counts as @ns worth of instructions executed by that vCPU
 * instead, so the virtual clock moves on by exactly @ns and no host time passes.
 */
static void hilbox_charge_latency(uint64_t ns)
{
    if (!current_cpu) {
        return;
    }
    if (icount_enabled()) {
        current_cpu->icount_budget += icount_round(ns);
        return;
    }
    async_run_on_cpu(current_cpu, hilbox_mmio_stall, RUN_ON_CPU_HOST_ULONG(ns));
}

/* §11 mmio-spike: every fault-every-th trapping access by a vCPU waits fault-latency-us more. */
static void hilbox_fault_spike(HilboxState *s)
{
    if (s->fault == HILBOX_FAULT_MMIO_SPIKE && current_cpu &&
        ++s->fault_accesses % s->fault_every == 0) {
        hilbox_charge_latency((uint64_t)s->fault_latency_us * SCALE_US);
    }
}

static uint64_t hilbox_fb_read(void *opaque, hwaddr addr, unsigned size)
{
    HilboxState *s = opaque;
    uint64_t val = 0, n;
    unsigned i;

    if (s->link_down) {
        return MAKE_64BIT_MASK(0, 8 * size);   /* §11: a read nobody completes */
    }
    hilbox_fault_spike(s);
    /* mmio mode, or direct mode while the RAM is being redrawn (§4.4): the published frame */
    n = qatomic_read_u64(&s->frame_number);
    for (i = 0; i < size; i++) {
        val |= (uint64_t)hilbox_fb_byte_faulty(s, n, addr + i) << (8 * i);
    }
    if (s->mmio_latency_ns) {
        /* charged to the reading vCPU: host time outside the lock, or icount virtual time */
        hilbox_charge_latency(s->mmio_latency_ns);
    }
    return val;
}

static void hilbox_fb_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    HilboxState *s = opaque;

    /* §4.4: the framebuffer is read-only; count the attempt, change nothing. */
    if (!s->link_down) {
        hilbox_fault_spike(s);
        s->fb_write_attempts++;             /* §11: a write on a dead link goes nowhere */
    }
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

/*
 * Packets due by device clock @now, whole reports only (§5.1):
 * floor(floor(T * r / 1e9) / b) * b with T the enabled time.
 */
static uint64_t gen_packets_due(HilboxState *s, uint64_t now)
{
    uint64_t packets;

    if (now < s->gen_epoch) {
        return 0;
    }
    packets = muldiv64(now - s->gen_epoch, s->rate_hz, NS_PER_SEC);
    return packets - packets % s->bundle;
}

static void hilbox_gen_schedule(HilboxState *s)
{
    timer_mod(s->gen_timer, s->epoch + gen_packet_ts(s, s->gen_k + s->bundle - 1));
}

static void hilbox_gen_tick(void *opaque)
{
    HilboxState *s = opaque;
    uint64_t due = gen_packets_due(s, hilbox_clock(s));

    while (s->gen_k < due) {
        uint32_t i;

        if (s->fifo_count == s->fifo_depth) {
            /*
             * A late timer catching up into a full FIFO: nothing is popped while this runs,
             * so every remaining packet is dropped; count them at once.
             */
            uint64_t n = due - s->gen_k;

            s->ev_produced += n;
            s->ev_dropped += n;
            s->gen_k = due;
            s->int_status |= HB_INT_EV_OVERFLOW;
            hilbox_update_irq(s);
            break;
        }
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

static void hilbox_latch_clear(HilboxState *s)
{
    memset(s->latch_valid, 0, s->latch_slots);
}

static void hilbox_reset_state(HilboxState *s)
{
    timer_del(s->frame_timer);
    timer_del(s->gen_timer);
    s->epoch = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->control = 0;
    s->int_status = 0;
    s->int_mask = 0;
    hilbox_update_irq(s);
    hilbox_latch_clear(s);
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
    /*
     * frame 0 "rendered" (§8): FRAME_SEQ 2, FRAMES_PRODUCED 1 at once; a render in flight is
     * abandoned, and the picture is redrawn by the render thread while BAR2 traps (§4.4)
     */
    hilbox_frames_restart(s, 0, 1);
    timer_mod(s->frame_timer, s->epoch + frame_start(s, 1));
}

static void hilbox_qdev_reset(DeviceState *dev)
{
    hilbox_reset_state(HILBOX_PCI(dev));
}

/* ---- registers (§3) ------------------------------------------------------ */

/* Index 0..HILBOX_NUM_REG64-1 of a 64-bit register's low-word offset, -1 if none (§3) */
static int reg64_index(hwaddr off)
{
    switch (off) {
    case HB_REG_FRAME_NUMBER:
        return 0;
    case HB_REG_FRAME_TIMESTAMP:
        return 1;
    case HB_REG_DEVICE_CLOCK:
        return 2;
    case HB_REG_FB_WRITE_ATTEMPTS:
        return 3;
    case HB_REG_FRAMES_PRODUCED:
        return 4;
    case HB_REG_EV_PRODUCED:
        return 5;
    case HB_REG_EV_DELIVERED:
        return 6;
    case HB_REG_EV_DROPPED:
        return 7;
    default:
        return -1;
    }
}

static bool reg_is64(hwaddr off)
{
    return reg64_index(off) >= 0;
}

static uint64_t hilbox_reg64(HilboxState *s, hwaddr off)
{
    switch (off) {
    case HB_REG_FRAME_NUMBER:
        return qatomic_read_u64(&s->frame_number);         /* published (§4.3) */
    case HB_REG_FRAME_TIMESTAMP:
        return qatomic_read_u64(&s->frame_ts);
    case HB_REG_DEVICE_CLOCK:
        return hilbox_clock(s);
    case HB_REG_FB_WRITE_ATTEMPTS:
        return s->fb_write_attempts;
    case HB_REG_FRAMES_PRODUCED:
        return qatomic_read_u64(&s->frames_produced);
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

/* The latch slot of whoever makes this access: its vCPU, or the shared non-vCPU slot (§3) */
static unsigned hilbox_latch_slot(HilboxState *s)
{
    if (current_cpu && current_cpu->cpu_index >= 0 &&
        (unsigned)current_cpu->cpu_index < s->latch_slots - 1) {
        return current_cpu->cpu_index;
    }
    return s->latch_slots - 1;
}

/* One aligned 32-bit register read, with the per-register, per-vCPU latch of §3. */
static uint32_t hilbox_read32(HilboxState *s, hwaddr off)
{
    int r = reg64_index(off);

    if (r >= 0) {
        uint64_t v = hilbox_reg64(s, off);
        unsigned slot = hilbox_latch_slot(s);

        s->latch_hi[slot * HILBOX_NUM_REG64 + r] = v >> 32;
        s->latch_valid[slot] |= 1u << r;
        return (uint32_t)v;
    }
    if (off >= 4 && (r = reg64_index(off - 4)) >= 0) {
        unsigned slot = hilbox_latch_slot(s);

        if (s->latch_valid[slot] & (1u << r)) {
            return s->latch_hi[slot * HILBOX_NUM_REG64 + r];
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
        return qatomic_load_acquire(&s->frame_seq);        /* odd during a render (§4.3) */
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
        return hilbox_int_status(s);
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
        /*
         * §7: the bits written are cleared; if records remain, EV_READY is set again at once.
         * With MSI that re-assertion is a new false->true transition (one more message); the
         * INTx line simply stays asserted (it is level-triggered, so no low pulse).
         */
        s->int_status &= ~val;
        if (msi_enabled(PCI_DEVICE(s))) {
            hilbox_update_irq(s);
        }
        if (s->fifo_count) {
            s->int_status |= HB_INT_EV_READY;
        }
        hilbox_update_irq(s);
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

    if (s->link_down) {
        return MAKE_64BIT_MASK(0, 8 * size);   /* §11 */
    }
    hilbox_fault_spike(s);
    if (size == 4 && !(addr & 3)) {
        return hilbox_read32(s, addr);
    }
    if (size == 8 && reg_is64(addr)) {
        return hilbox_reg64(s, addr);      /* atomic; leaves the latches alone (§3) */
    }
    qemu_log_mask(LOG_GUEST_ERROR, "hilbox-pci: bad register read size %u at 0x%"
                  HWADDR_PRIx "\n", size, addr);
    return 0;
}

static void hilbox_regs_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    HilboxState *s = opaque;

    if (s->link_down) {
        return;                             /* §11 */
    }
    hilbox_fault_spike(s);
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

/*
 * §6: a record never spans connections. When the host side connects or disconnects, the bytes
 * of a partial record are discarded and counted in FEED_ERRORS.
 */
static void hilbox_feed_event(void *opaque, QEMUChrEvent event)
{
    HilboxState *s = opaque;

    if (event == CHR_EVENT_OPENED || event == CHR_EVENT_CLOSED) {
        s->feed_errors += s->feed_len;
        s->feed_len = 0;
    }
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

static int64_t sat_add64(int64_t a, int64_t b)
{
    int64_t r;

    if (sadd64_overflow(a, b, &r)) {
        return b > 0 ? INT64_MAX : INT64_MIN;
    }
    return r;
}

static int sat_range(int64_t v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int)v;
}

static void hilbox_input_event(DeviceState *dev, QemuConsole *src, InputEvent *evt)
{
    HilboxState *s = HILBOX_PCI(dev);

    switch (evt->type) {
    case INPUT_EVENT_KIND_REL: {
        InputMoveEvent *move = evt->u.rel.data;

        /* §5.1: deltas add up saturating; the sum saturates to the record's int16 */
        if (move->axis == INPUT_AXIS_X) {
            s->in_dx = sat_add64(s->in_dx, move->value);
        } else if (move->axis == INPUT_AXIS_Y) {
            s->in_dy = sat_add64(s->in_dy, move->value);
        }
        s->in_pending = true;
        break;
    }
    case INPUT_EVENT_KIND_BTN: {
        InputBtnEvent *btn = evt->u.btn.data;
        uint32_t bit = button_bit(btn->button);

        if (btn->button == INPUT_BUTTON_WHEEL_UP || btn->button == INPUT_BUTTON_WHEEL_DOWN) {
            if (btn->down) {
                s->in_wheel = sat_add64(s->in_wheel,
                                        btn->button == INPUT_BUTTON_WHEEL_UP ? 1 : -1);
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
    hilbox_push_event(s, hilbox_clock(s), sat_range(s->in_dx, INT16_MIN, INT16_MAX),
                      sat_range(s->in_dy, INT16_MIN, INT16_MAX),
                      sat_range(s->in_wheel, INT8_MIN, INT8_MAX), s->in_buttons,
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

/* ---- faults (§11) ------------------------------------------------------- */

/* Config space on a dead link: all ones, writes dropped (the guest's side only). */
static uint32_t hilbox_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    if (HILBOX_PCI(pdev)->link_down) {
        return (uint32_t)MAKE_64BIT_MASK(0, 8 * len);
    }
    return pci_default_read_config(pdev, addr, len);
}

static void hilbox_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val, int len)
{
    if (!HILBOX_PCI(pdev)->link_down) {
        pci_default_write_config(pdev, addr, val, len);
    }
}

/* The link changed: BAR2's direct reads and the interrupt follow it. */
static void hilbox_link_update(HilboxState *s)
{
    if (DEVICE(s)->realized) {
        hilbox_fb_update_romd(s);
        hilbox_update_irq(s);
    }
}

static void hilbox_fault_clear(HilboxState *s)
{
    HilboxFault was = s->fault;

    if (s->fault_timer) {
        timer_del(s->fault_timer);
    }
    if (s->fault_irq_timer) {
        timer_del(s->fault_irq_timer);
    }
    qatomic_set(&s->fault, HILBOX_FAULT_NONE);
    s->link_down = false;
    if (!DEVICE(s)->realized) {
        return;
    }
    if (was == HILBOX_FAULT_FRAME_STALL_ODD) {
        /* the dead writer is gone: FRAME_SEQ even again, as many frames as were published */
        qemu_mutex_lock(&s->render_lock);
        qatomic_store_release(&s->frame_seq,
                              (uint32_t)(2 * qatomic_read_u64(&s->frames_produced)));
        qemu_mutex_unlock(&s->render_lock);
    }
    if (was == HILBOX_FAULT_FRAME_STALL || was == HILBOX_FAULT_FRAME_STALL_ODD) {
        s->tick_n = UINT64_MAX;     /* the current frame is handed over at once */
        hilbox_frame_tick(s);
    }
}

/* §11 frame-stall-odd: the render in flight stops where it is; FRAME_SEQ stays odd. */
static void hilbox_frame_writer_dies(HilboxState *s)
{
    qemu_mutex_lock(&s->render_lock);
    qatomic_set(&s->render_gen, s->render_gen + 1);     /* the thread abandons its frame */
    s->job_pending = false;
    if (!(qatomic_read(&s->frame_seq) & 1)) {
        qatomic_store_release(&s->frame_seq, qatomic_read(&s->frame_seq) + 1);
    }
    s->busy_show = false;
    qemu_mutex_unlock(&s->render_lock);
}

/* §11 spurious-irq: an interrupt with nothing to report, every fault-period-us. */
static void hilbox_spurious_tick(void *opaque)
{
    HilboxState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);

    if (s->fault != HILBOX_FAULT_SPURIOUS_IRQ) {
        return;
    }
    if (msi_enabled(pdev)) {
        msi_notify(pdev, 0);
    } else if (!s->irq_level) {
        pci_irq_pulse(pdev);
    }
    timer_mod(s->fault_irq_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
              (int64_t)s->fault_period_us * SCALE_US);
}

/* A fault just set on a running device starts what it needs (timers, the one-shot burst). */
static void hilbox_fault_start(HilboxState *s)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    uint32_t i;

    switch (s->fault) {
    case HILBOX_FAULT_SURPRISE_REMOVAL:
        timer_mod(s->fault_timer, now + (int64_t)s->fault_delay_ms * SCALE_MS);
        break;
    case HILBOX_FAULT_SPURIOUS_IRQ:
        timer_mod(s->fault_irq_timer, now + (int64_t)s->fault_period_us * SCALE_US);
        break;
    case HILBOX_FAULT_FRAME_STALL_ODD:
        hilbox_frame_writer_dies(s);
        break;
    case HILBOX_FAULT_FIFO_BURST:
        for (i = 0; i < s->fault_burst; i++) {
            hilbox_push_event(s, hilbox_clock(s), 1, 0, 0, 0, HB_EV_SOURCE_GENERATOR, 0);
        }
        s->fault = HILBOX_FAULT_NONE;       /* one-shot */
        break;
    default:
        break;
    }
}

/*
 * The slot this device can be pulled out of: its hot-plug handler must be the PCIe slot
 * itself (native hot-plug), with hot-plug capability. NULL, and why, otherwise.
 */
static PCIDevice *hilbox_pull_slot(HilboxState *s, Error **errp)
{
    DeviceState *dev = DEVICE(s);
    HotplugHandler *h;
    PCIDevice *port;

    if (!dev->realized) {
        error_setg(errp, "hilbox-pci: fault 'surprise-removal' needs a running device "
                   "(set it with qom-set once the device is realized)");
        return NULL;
    }
    h = qdev_get_hotplug_handler(dev);
    if (!h || !object_dynamic_cast(OBJECT(h), TYPE_PCIE_SLOT)) {
        error_setg(errp, "hilbox-pci: fault 'surprise-removal' needs the device in a PCIe "
                   "slot with native hot-plug (a pcie-root-port; on q35 also -global "
                   "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off), but its hot-plug "
                   "handler is %s", h ? object_get_typename(OBJECT(h)) : "none");
        return NULL;
    }
    port = PCI_DEVICE(h);
    if (!(pci_get_long(port->config + port->exp.exp_cap + PCI_EXP_SLTCAP) &
          PCI_EXP_SLTCAP_HPC)) {
        error_setg(errp, "hilbox-pci: fault 'surprise-removal' needs a hot-plug capable "
                   "slot, and '%s' has hot-plug off", DEVICE(port)->id ?: "the port");
        return NULL;
    }
    return port;
}

/*
 * A pulled card also drops the link: Data Link Layer State Changed. QEMU 7.2's slot knows
 * only presence-detect, attention-button and command-completed events, and a guest whose
 * slot has an attention button (Linux pciehp) enables the button and link events, not
 * presence detect — and the link event enable (DLLSCE) is not writable in QEMU's slot. So
 * the port reports the event here: DLLSC set and made write-one-to-clear as the PCIe spec
 * has it (QEMU's slot leaves the bit read-only, as it never sets it), and the port's
 * hot-plug interrupt sent whenever the guest enabled hot-plug interrupts (HPIE).
 */
static void hilbox_port_link_changed(PCIDevice *port)
{
    uint8_t *exp = port->config + port->exp.exp_cap;
    uint16_t ctl = pci_get_word(exp + PCI_EXP_SLTCTL);

    pci_word_test_and_set_mask(port->w1cmask + port->exp.exp_cap + PCI_EXP_SLTSTA,
                               PCI_EXP_SLTSTA_DLLSC);
    if (pci_word_test_and_set_mask(exp + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_DLLSC)) {
        return;                         /* already pending: no new interrupt (§6.7.3.4) */
    }
    if (!(ctl & PCI_EXP_SLTCTL_HPIE)) {
        return;
    }
    if (msix_enabled(port)) {
        msix_notify(port, pcie_cap_flags_get_vector(port));
    } else if (msi_enabled(port)) {
        msi_notify(port, pcie_cap_flags_get_vector(port));
    }
}

/*
 * The card leaves its slot without an eject request. QEMU's slot removes a card at once,
 * with no round trip to the guest, when the slot is powered off; so the slot is shown
 * powered off for the length of the request and restored right after: the guest sees what
 * pciehp sees of a pulled card — presence detect clear, presence-detect-changed and link
 * state changed signalled, the power it turned on still on. Runs as a one-shot bottom half
 * holding a reference, because the device is unrealized and unparented inside (nothing of
 * it is used after).
 */
static void hilbox_pull_bh(void *opaque)
{
    HilboxState *s = opaque;
    Error *err = NULL;
    PCIDevice *port;

    /* still wanted: not cancelled (fault=none), not unplugged or restored meanwhile */
    if (DEVICE(s)->realized && s->fault == HILBOX_FAULT_SURPRISE_REMOVAL &&
        (port = hilbox_pull_slot(s, &err))) {
        uint8_t *ctl = port->config + port->exp.exp_cap + PCI_EXP_SLTCTL;
        uint16_t was = pci_get_word(ctl);

        pci_set_word(ctl, (was & ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC)) |
                     PCI_EXP_SLTCTL_PWR_IND_OFF | PCI_EXP_SLTCTL_PWR_OFF);
        hotplug_handler_unplug_request(HOTPLUG_HANDLER(port), DEVICE(s), &err);
        pci_set_word(ctl, was);
        if (!err) {
            hilbox_port_link_changed(port);
        }
    }
    if (err) {
        warn_report_err(err);   /* e.g. a slot locked meanwhile: the link stays down */
    }
    object_unref(OBJECT(s));
}

static void hilbox_fault_timer(void *opaque)
{
    HilboxState *s = opaque;

    object_ref(OBJECT(s));
    aio_bh_schedule_oneshot(qemu_get_aio_context(), hilbox_pull_bh, s);
}

static char *hilbox_get_fault(Object *obj, Error **errp)
{
    return g_strdup(hilbox_fault_names[HILBOX_PCI(obj)->fault]);
}

static void hilbox_set_fault(Object *obj, const char *value, Error **errp)
{
    HilboxState *s = HILBOX_PCI(obj);
    int f;

    for (f = 0; f < HILBOX_FAULT__MAX; f++) {
        if (!strcmp(value, hilbox_fault_names[f])) {
            break;
        }
    }
    if (f == HILBOX_FAULT__MAX) {
        error_setg(errp, "hilbox-pci: fault '%s' is not allowed; allowed: none, link-down, "
                   "surprise-removal, irq-lost, spurious-irq, irq-storm, fifo-burst, "
                   "mmio-spike, frame-stall, frame-stall-odd, bit-flip", value);
        return;
    }
    if (f == HILBOX_FAULT_SURPRISE_REMOVAL && !hilbox_pull_slot(s, errp)) {
        return;
    }
    if (f == HILBOX_FAULT_FIFO_BURST && !DEVICE(s)->realized) {
        error_setg(errp, "hilbox-pci: fault 'fifo-burst' needs a running device (set it "
                   "with qom-set once the device is realized)");
        return;
    }
    hilbox_fault_clear(s);
    qatomic_set(&s->fault, f);      /* the render thread reads it (bit-flip) */
    s->link_down = f == HILBOX_FAULT_LINK_DOWN || f == HILBOX_FAULT_SURPRISE_REMOVAL;
    if (f != HILBOX_FAULT_NONE) {
        s->faults_injected++;
    }
    if (DEVICE(s)->realized) {
        hilbox_fault_start(s);
    }
    hilbox_link_update(s);
}

/* §11 fault parameters: validated uint32 properties changeable at run time. */
typedef struct HilboxFaultParam {
    const char *name;
    size_t offset;
    uint32_t min, max, def;
} HilboxFaultParam;

static const HilboxFaultParam hilbox_fault_params[] = {
    { "fault-delay-ms", offsetof(HilboxState, fault_delay_ms), HB_PROP_FAULT_DELAY_MS_MIN,
      HB_PROP_FAULT_DELAY_MS_MAX, HB_PROP_FAULT_DELAY_MS_DEFAULT },
    { "fault-period-us", offsetof(HilboxState, fault_period_us), HB_PROP_FAULT_PERIOD_US_MIN,
      HB_PROP_FAULT_PERIOD_US_MAX, HB_PROP_FAULT_PERIOD_US_DEFAULT },
    { "fault-burst", offsetof(HilboxState, fault_burst), HB_PROP_FAULT_BURST_MIN,
      HB_PROP_FAULT_BURST_MAX, HB_PROP_FAULT_BURST_DEFAULT },
    { "fault-every", offsetof(HilboxState, fault_every), HB_PROP_FAULT_EVERY_MIN,
      HB_PROP_FAULT_EVERY_MAX, HB_PROP_FAULT_EVERY_DEFAULT },
    { "fault-latency-us", offsetof(HilboxState, fault_latency_us),
      HB_PROP_FAULT_LATENCY_US_MIN, HB_PROP_FAULT_LATENCY_US_MAX,
      HB_PROP_FAULT_LATENCY_US_DEFAULT },
    { "fault-rate", offsetof(HilboxState, fault_rate), HB_PROP_FAULT_RATE_MIN,
      HB_PROP_FAULT_RATE_MAX, HB_PROP_FAULT_RATE_DEFAULT },
};

static uint32_t *hilbox_fault_param(Object *obj, const HilboxFaultParam *p)
{
    return (uint32_t *)((uint8_t *)HILBOX_PCI(obj) + p->offset);
}

static void hilbox_get_fault_param(Object *obj, Visitor *v, const char *name, void *opaque,
                                   Error **errp)
{
    visit_type_uint32(v, name, hilbox_fault_param(obj, opaque), errp);
}

static void hilbox_set_fault_param(Object *obj, Visitor *v, const char *name, void *opaque,
                                   Error **errp)
{
    const HilboxFaultParam *p = opaque;
    uint32_t val;

    if (!visit_type_uint32(v, name, &val, errp)) {
        return;
    }
    if (val < p->min || val > p->max) {
        error_setg(errp, "hilbox-pci: property '%s' %u is out of range; allowed %u..%u",
                   name, val, p->min, p->max);
        return;
    }
    *hilbox_fault_param(obj, p) = val;
}

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
    /* §9: direct mode rewrites the whole picture every frame; bound the bytes per second */
    if (!s->fb_mmio && bytes * s->fps > HB_FB_MAX_BYTES_PER_S) {
        error_setg(errp, "hilbox-pci: property 'fps' is %u: stride x height x fps is %" PRIu64
                   " bytes/s: allowed up to %u MiB/s in fb-mode=direct", s->fps, bytes * s->fps,
                   HB_FB_MAX_BYTES_PER_S / (unsigned)MiB);
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

    if (s->fb_mmio) {
        /* every access traps and is computed (§4.4): no RAM behind BAR2 at all */
        memory_region_init_io(&s->fb, OBJECT(s), &hilbox_fb_ops, s, "hilbox-fb",
                              s->bar2_size);
    } else {
        /*
         * RAM the guest reads directly, writes trapping (§4.4). Not migrated: the picture is a
         * function of FRAME_NUMBER (§4.2), so post_load redraws it instead (§4.4).
         */
        memory_region_init_rom_device_nomigrate(&s->fb, OBJECT(s), &hilbox_fb_ops, s,
                                                "hilbox-fb", s->bar2_size, &err);
        if (err) {
            error_propagate(errp, err);
            goto fail_msi;
        }
        s->fb_ptr = memory_region_get_ram_ptr(&s->fb);
        memset(s->fb_ptr, 0, s->bar2_size);
    }
    pci_register_bar(pdev, HB_BAR_FB, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     (s->fb_mmio ? 0 : PCI_BASE_ADDRESS_MEM_PREFETCH), &s->fb);

    /* one latch slot per possible vCPU and one for every other accessor (§3) */
    s->latch_slots = MACHINE(qdev_get_machine())->smp.max_cpus + 1;
    s->latch_hi = g_new0(uint32_t, (size_t)s->latch_slots * HILBOX_NUM_REG64);
    s->latch_valid = g_new0(uint8_t, s->latch_slots);

    s->fifo_bytes = s->fifo_depth * HB_EV_RECORD_SIZE;
    s->fifo = g_malloc0(s->fifo_bytes);
    s->frame_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_frame_tick, s);
    s->gen_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_gen_tick, s);
    s->fault_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_fault_timer, s);
    s->fault_irq_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hilbox_spurious_tick, s);

    if (qemu_chr_fe_backend_connected(&s->chr)) {
        qemu_chr_fe_set_handlers(&s->chr, hilbox_feed_can_receive, hilbox_feed_receive,
                                 hilbox_feed_event, NULL, s, NULL, true);
    }
    if (s->input) {
        s->input_handler = qemu_input_handler_register(DEVICE(s), &hilbox_input_handler);
        qemu_input_handler_activate(s->input_handler);
    }
    qemu_mutex_init(&s->render_lock);
    qemu_cond_init(&s->render_cond);
    qemu_cond_init(&s->render_idle);
    if (!s->fb_mmio) {
        hilbox_render_start(s);
    }
    hilbox_reset_state(s);              /* hands the thread its first job: frame 0 */
    hilbox_fault_start(s);              /* a fault given on the command line (§11) */
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

    hilbox_render_stop(s);              /* first: nothing writes BAR2 or the frame after this */
    qemu_cond_destroy(&s->render_idle);
    qemu_cond_destroy(&s->render_cond);
    qemu_mutex_destroy(&s->render_lock);
    if (s->input_handler) {
        qemu_input_handler_unregister(s->input_handler);
        s->input_handler = NULL;
    }
    qemu_chr_fe_deinit(&s->chr, false);
    timer_free(s->gen_timer);
    timer_free(s->frame_timer);
    timer_free(s->fault_timer);     /* a pull already scheduled finds the device unrealized */
    s->fault_timer = NULL;
    timer_free(s->fault_irq_timer);
    s->fault_irq_timer = NULL;
    g_free(s->fifo);
    s->fifo = NULL;
    g_free(s->latch_hi);
    g_free(s->latch_valid);
    s->latch_hi = NULL;
    s->latch_valid = NULL;
    msi_uninit(pdev);
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
}

/* ---- QOM ----------------------------------------------------------------- */

/*
 * Incoming state is checked before use: every field that indexes or sizes something, and
 * every field whose range the device relies on. The frame's picture is not in the stream
 * (BAR2's RAM is not migrated); it is redrawn from FRAME_NUMBER. The host-feed reassembly
 * buffer and the register latches are not in the stream either (§3, §6).
 */
static int hilbox_post_load(void *opaque, int version_id)
{
    HilboxState *s = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    if (s->fifo_head >= s->fifo_depth) {
        error_report("hilbox-pci: migrated fifo_head %u is not below fifo-depth %u",
                     s->fifo_head, s->fifo_depth);
        return -EINVAL;
    }
    if (s->fifo_count > s->fifo_depth) {
        error_report("hilbox-pci: migrated fifo_count %u exceeds fifo-depth %u",
                     s->fifo_count, s->fifo_depth);
        return -EINVAL;
    }
    if (s->control & ~HB_CONTROL_EV_ENABLE) {
        error_report("hilbox-pci: migrated control 0x%x has undefined bits", s->control);
        return -EINVAL;
    }
    if ((s->int_status | s->int_mask) & ~HB_INT_ALL) {
        error_report("hilbox-pci: migrated int_status 0x%x / int_mask 0x%x has undefined bits",
                     s->int_status, s->int_mask);
        return -EINVAL;
    }
    if (s->in_buttons & ~HILBOX_EV_BUTTONS_ALL) {
        error_report("hilbox-pci: migrated in_buttons 0x%x has undefined bits", s->in_buttons);
        return -EINVAL;
    }
    if (s->epoch > now) {
        error_report("hilbox-pci: migrated epoch %" PRId64 " is after the virtual clock %"
                     PRId64, s->epoch, now);
        return -EINVAL;
    }
    if (s->gen_epoch > hilbox_clock(s)) {
        error_report("hilbox-pci: migrated gen_epoch %" PRIu64 " is after the device clock %"
                     PRIu64, s->gen_epoch, hilbox_clock(s));
        return -EINVAL;
    }
    if (s->rate_hz && (s->gen_k % s->bundle || s->gen_k > gen_packets_due(s, hilbox_clock(s)))) {
        error_report("hilbox-pci: migrated gen_k %" PRIu64 " is not a report boundary at or "
                     "before the packets due", s->gen_k);
        return -EINVAL;
    }

    /* §11: faults are not in the stream; the restored device has none */
    hilbox_fault_clear(s);

    /*
     * The frame of the stream becomes current: the render in flight (of the frames this
     * device showed before the load) is abandoned, FRAME_SEQ = 2 x FRAMES_PRODUCED, and BAR2
     * traps and is computed until the render thread has redrawn it (§4.4, §10).
     */
    hilbox_frames_restart(s, s->mig_frame_number, s->mig_frames_produced);
    hilbox_latch_clear(s);
    return 0;
}

/*
 * §10: the stream's frame. The render thread runs on (BAR2 is not in the stream); a render in
 * progress or handed over and not started counts as complete, as the source completes it: the
 * newest frame handed over (tick_n) and every render that will have completed by then.
 */
static int hilbox_pre_save(void *opaque)
{
    HilboxState *s = opaque;

    qemu_mutex_lock(&s->render_lock);
    s->mig_frame_number = s->tick_n;
    s->mig_frames_produced = qatomic_read_u64(&s->frames_produced) + s->busy_show +
                             (s->job_pending && s->job_show);
    qemu_mutex_unlock(&s->render_lock);
    return 0;
}

static const VMStateDescription vmstate_hilbox = {
    .name = TYPE_HILBOX_PCI,
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_save = hilbox_pre_save,
    .post_load = hilbox_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, HilboxState),
        /* the configuration the rest of the stream depends on must be the destination's */
        VMSTATE_UINT32_EQUAL(width, HilboxState, "hilbox-pci: property 'width' differs"),
        VMSTATE_UINT32_EQUAL(height, HilboxState, "hilbox-pci: property 'height' differs"),
        VMSTATE_UINT32_EQUAL(stride, HilboxState, "hilbox-pci: property 'stride' differs"),
        VMSTATE_UINT32_EQUAL(fps, HilboxState, "hilbox-pci: property 'fps' differs"),
        VMSTATE_UINT32_EQUAL(rate_hz, HilboxState,
                             "hilbox-pci: property 'mouse-rate-hz' differs"),
        VMSTATE_UINT32_EQUAL(bundle, HilboxState, "hilbox-pci: property 'mouse-bundle' differs"),
        VMSTATE_UINT32_EQUAL(fifo_depth, HilboxState,
                             "hilbox-pci: property 'fifo-depth' differs between the migration "
                             "stream and this device"),
        VMSTATE_INT64(epoch, HilboxState),
        VMSTATE_UINT64(mig_frame_number, HilboxState),       /* FRAME_NUMBER */
        VMSTATE_UINT64(mig_frames_produced, HilboxState),    /* FRAMES_PRODUCED */
        VMSTATE_UINT64(fb_write_attempts, HilboxState),
        VMSTATE_TIMER_PTR(frame_timer, HilboxState),
        VMSTATE_UINT32(control, HilboxState),
        VMSTATE_UINT32(int_status, HilboxState),
        VMSTATE_UINT32(int_mask, HilboxState),
        VMSTATE_BOOL(irq_level, HilboxState),
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
        VMSTATE_INT64(in_dx, HilboxState),
        VMSTATE_INT64(in_dy, HilboxState),
        VMSTATE_INT64(in_wheel, HilboxState),
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

/* QOM counters of the published frame (§9): written by the render thread, read atomically */
static void hilbox_get_published(Object *obj, Visitor *v, const char *name, void *opaque,
                                 Error **errp)
{
    uint64_t val = qatomic_read_u64((uint64_t *)opaque);

    visit_type_uint64(v, name, &val, errp);
}

static void hilbox_instance_init(Object *obj)
{
    HilboxState *s = HILBOX_PCI(obj);
    size_t i;

    /* Counters for qom-get (§9) */
    object_property_add(obj, "frames-produced", "uint64", hilbox_get_published, NULL, NULL,
                        &s->frames_produced);
    object_property_add(obj, "frame-number", "uint64", hilbox_get_published, NULL, NULL,
                        &s->frame_number);
    object_property_add_uint64_ptr(obj, "fb-write-attempts", &s->fb_write_attempts,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-produced", &s->ev_produced,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-delivered", &s->ev_delivered,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "events-dropped", &s->ev_dropped, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "feed-errors", &s->feed_errors, OBJ_PROP_FLAG_READ);

    /* Faults (§11): set and cleared at run time */
    object_property_add_str(obj, "fault", hilbox_get_fault, hilbox_set_fault);
    for (i = 0; i < ARRAY_SIZE(hilbox_fault_params); i++) {
        const HilboxFaultParam *p = &hilbox_fault_params[i];

        *hilbox_fault_param(obj, p) = p->def;
        object_property_add(obj, p->name, "uint32", hilbox_get_fault_param,
                            hilbox_set_fault_param, NULL, (void *)p);
    }
    object_property_add_uint64_ptr(obj, "faults-injected", &s->faults_injected,
                                   OBJ_PROP_FLAG_READ);
}

static void hilbox_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = hilbox_realize;
    k->exit = hilbox_unrealize;
    k->config_read = hilbox_config_read;
    k->config_write = hilbox_config_write;
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
