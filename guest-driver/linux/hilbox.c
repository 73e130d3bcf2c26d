// SPDX-License-Identifier: GPL-2.0
/*
 * hilbox.c - reference Linux driver for the hilbox-pci device
 *
 * One character device per bound device, /dev/hilboxN, offering:
 *  - a read-only, revocable, zero-copy mapping of the framebuffer (BAR2),
 *  - a seqlock-protected copy of one consistent frame (HILBOX_IOC_COPY_FRAME),
 *  - mouse events as 24-byte records from read(), handed to pending read
 *    requests in the order the requests were queued ("inverted call"),
 *  - info, statistics and device-clock ioctls.
 *
 * Lifetime: struct hilbox_dev is reference counted.  The PCI binding holds
 * one reference, every open file holds one.  Removal (unbind, hot-unplug)
 * marks the device dead under hw_lock, zaps every user mapping, wakes every
 * reader and releases the hardware; files that outlive the device keep the
 * (now hardware-less) state alive and get -ENODEV from every operation.
 *
 * The contract with user space is guest-driver/INTERFACE.md, the device
 * contract is qemu-device/SPEC.md.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/poll.h>
#include <linux/interrupt.h>
#include <linux/kref.h>
#include <linux/rwsem.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/sched/signal.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "hilbox_uapi.h"
/* device contract: registers, bits, ID/VERSION, PCI IDs (HB_REGS_SIZE, HB_ID_MAGIC, ...) */
#include "hilbox_regs.h"

#define HB_READ_BATCH		16	/* records per read() at most */
#define HB_POLLQ		64	/* wait queues pollers are spread over (3, "Strict completion order") */
#define HB_POP_BATCH		32	/* records popped per ev_lock hold */
#define HB_IRQ_BUDGET		1024	/* records per run of the interrupt thread */
#define HB_STORM_RUNS		64	/* empty EV_READY runs in a row: a storm */
#define HB_FAULT_RETRIES	8	/* read(): fault-in + retry rounds */
#define HB_COPY_CHUNK		(16 * 1024)	/* COPY_FRAME: bytes per hw_lock hold */
#define HB_COPY_SLICE_MMIO	512	/* BAR2 bytes per hw_lock hold, fb-mode=mmio */
#define HB_FAULT_AROUND		512	/* pages inserted per fault */
#define HB_ODD_SEQ_WAIT_NS	(1000ULL * NSEC_PER_MSEC)
#define HB_MAX_RETRIES		65536
#define HB_FS_MAGIC		0x48424f58

static unsigned int ring_size = 4096;
module_param(ring_size, uint, 0444);
MODULE_PARM_DESC(ring_size, "Driver event ring capacity in records (16..1048576, default 4096)");

static ushort dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Permission bits of /dev/hilboxN (default 0600)");

static unsigned int copy_retries = 16;
module_param(copy_retries, uint, 0644);
MODULE_PARM_DESC(copy_retries, "Default seqlock retries of HILBOX_IOC_COPY_FRAME (default 16)");

/*
 * Test only (INTERFACE.md §7): every HILBOX_IOC_COPY_FRAME first copies the frame this many
 * extra times into the caller's buffer, unchecked, before the real seqlocked copy overwrites
 * it: a driver made slower on purpose, so a benchmark can prove it notices. Never set it
 * outside such a test.
 */
#define HB_TEST_EXTRA_PASSES_MAX	8
static unsigned int test_copy_extra_passes;
module_param(test_copy_extra_passes, uint, 0644);
MODULE_PARM_DESC(test_copy_extra_passes, "TEST ONLY: extra unchecked copy passes per COPY_FRAME (0..8, default 0)");

static unsigned int watchdog_ms = 100;
module_param(watchdog_ms, uint, 0644);
MODULE_PARM_DESC(watchdog_ms, "link and lost-interrupt check period in ms (0 = off)");

static DEFINE_IDA(hilbox_ida);

/* Pseudo file system providing one address_space per device (revocation). */
static struct vfsmount *hilbox_mnt;
static int hilbox_mnt_count;

enum hb_sub {
	HB_SUB_AUTO,	/* never set: first read()/poll() subscribes */
	HB_SUB_ON,
	HB_SUB_OFF,
};

struct hilbox_dev {
	struct kref kref;
	struct pci_dev *pdev;
	void __iomem *regs;
	void __iomem *fb;
	phys_addr_t fb_phys;
	resource_size_t fb_len;
	bool fb_wc;
	int irq;
	int id;
	char name[16];
	struct miscdevice misc;
	struct inode *inode;		/* owns the address_space of all maps */

	/* read: file ops touching hardware; write: removal, link changes */
	struct rw_semaphore hw_lock;
	bool dead;
	bool link_down;			/* ID read all ones; under hw_lock */

	/*
	 * Watchdog (INTERFACE.md 5a): link down/up and lost interrupts.
	 * drain_lock: one FIFO drain at a time (interrupt thread, watchdog).
	 */
	struct delayed_work watchdog;
	struct mutex drain_lock;
	u64 wd_irq_seen;		/* irq_count at the previous tick */
	u64 link_down_at;		/* ktime ns */
	u64 link_downs;			/* ev_lock */
	u64 fallback_drains;		/* ev_lock */
	u64 irq_spurious;		/* ev_lock */
	u64 irq_storms;			/* ev_lock */
	unsigned int empty_runs;	/* drain_lock: EV_READY, nothing to pop */
	bool storm_masked;		/* drain_lock: left masked for the watchdog */

	struct hilbox_info info;	/* immutable after probe */

	/*
	 * Subscription.  hf->sub, subscribers and sub_closed are under
	 * sub_lock, a spinlock, so poll() and non-blocking reads can
	 * subscribe without sleeping.  CONTROL.EV_ENABLE follows
	 * "subscribers != 0"; it is written under ctl_lock, by the caller
	 * when it may sleep, else by sub_work.
	 */
	spinlock_t sub_lock;
	unsigned int subscribers;
	bool sub_closed;		/* removal: sub_work is not queued again */
	struct mutex ctl_lock;
	bool ev_enabled;		/* CONTROL.EV_ENABLE as written, ctl_lock */
	struct work_struct sub_work;

	/*
	 * Interrupt: the hard handler masks INT_MASK and wakes the thread,
	 * which drains the FIFO and unmasks.  irq_armed (= INT_MASK on) and
	 * the INT_MASK writes are under irq_lock.
	 */
	spinlock_t irq_lock;
	bool irq_armed;
	struct hilbox_event pop_buf[HB_POP_BATCH];	/* interrupt thread only */

	/*
	 * Event ring and pending readers, all under ev_lock.  Only process
	 * context takes it (the interrupt thread, readers, poll, ioctls).
	 */
	spinlock_t ev_lock;
	bool ev_dead;
	bool ev_link_down;		/* reads fail with EIO meanwhile */
	struct hilbox_event *ring;
	u32 ring_cap;
	u32 ring_head;
	u32 ring_count;
	struct list_head waiters;
	u32 nr_waiters;
	u64 last_seq;
	u64 ev_received;
	u64 ring_drops;
	u64 seq_gaps;
	u64 flushed;
	u64 irq_count;
	u64 irq_overflows;
	atomic64_t ev_read;
	/*
	 * Pollers in arming order: each poll that arms a wait goes to the next
	 * of HB_POLLQ queues (poll_arm), and records wake the oldest queue with
	 * a sleeper (from poll_next), as the inverted call completes the oldest
	 * pending request.  Waking one queue per batch instead of every armed
	 * io_uring read keeps the cost per record constant whatever the number
	 * pending.  Both counters race benignly: a wake that lands on a newer
	 * queue still wakes a poller, and every read that leaves records
	 * behind wakes the next one.
	 */
	wait_queue_head_t pollq[HB_POLLQ];
	atomic_t poll_arm;
	unsigned int poll_next;
	struct hb_ev_ring *evr;		/* the shared-memory ring, or NULL; ev_lock */
	wait_queue_head_t ringq;	/* HILBOX_IOC_EV_RING_WAIT sleepers */
};

/*
 * The shared-memory event ring (INTERFACE.md 3b): header page + slots in
 * vmalloc memory, mapped read-only into the process.  Only the driver
 * writes it; head (the consumer's position) comes in by ioctl, checked.
 * Owned by the file that made it; hdev->evr points at it under ev_lock.
 */
struct hb_ev_ring {
	void *mem;			/* vmalloc_user: header page, then slots */
	size_t bytes;			/* mapping length, page multiple */
	struct hilbox_ev_ring_hdr *hdr;
	struct hilbox_ev_slot *slots;
	u32 records;			/* power of two */
	u64 head, tail, dropped;	/* the driver's copies; ev_lock */
};

struct hilbox_file {
	struct hilbox_dev *hdev;
	struct hb_ev_ring *evr;		/* this file's ring (set once, ev_lock) */
	enum hb_sub sub;		/* written under hdev->sub_lock */
	atomic64_t next_frame;		/* last copied frame + 1, 0 = none */
};

/*
 * A blocked read request, queued in hdev->waiters in arrival order.  Only
 * the first one may take records from the ring while any is queued.
 */
struct hilbox_waiter {
	struct list_head node;
	struct task_struct *task;
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static inline u32 hb_rd(struct hilbox_dev *hdev, unsigned int reg)
{
	return readl(hdev->regs + reg);
}

static inline void hb_wr(struct hilbox_dev *hdev, unsigned int reg, u32 val)
{
	writel(val, hdev->regs + reg);
}

/* 64-bit registers: one aligned 8-byte access is atomic (SPEC section 3). */
static inline u64 hb_rd64(struct hilbox_dev *hdev, unsigned int reg)
{
	return readq(hdev->regs + reg);
}

/* Enter a file operation that touches hardware; fails once removed or while the link is down. */
static int hb_hw_enter(struct hilbox_dev *hdev)
{
	down_read(&hdev->hw_lock);
	if (hdev->dead || hdev->link_down) {
		int ret = hdev->dead ? -ENODEV : -EIO;

		up_read(&hdev->hw_lock);
		return ret;
	}
	return 0;
}

/* The device answers with all ones: its link is down (or it is gone). Caller holds hw_lock. */
static bool hb_link_lost(struct hilbox_dev *hdev)
{
	return hb_rd(hdev, HB_REG_ID) == ~0u;
}

static void hb_hw_exit(struct hilbox_dev *hdev)
{
	up_read(&hdev->hw_lock);
}

static int hilbox_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, HB_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * No .owner: the internal mount must not pin the module, it goes away with
 * the last struct hilbox_dev, which always precedes module unload.
 */
static struct file_system_type hilbox_fs_type = {
	.name = "hilbox_inode",
	.init_fs_context = hilbox_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static struct inode *hb_inode_new(void)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&hilbox_fs_type, &hilbox_mnt, &hilbox_mnt_count);
	if (ret)
		return ERR_PTR(ret);
	inode = alloc_anon_inode(hilbox_mnt->mnt_sb);
	if (IS_ERR(inode))
		simple_release_fs(&hilbox_mnt, &hilbox_mnt_count);
	return inode;
}

static void hb_inode_put(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&hilbox_mnt, &hilbox_mnt_count);
}

static void hilbox_dev_release(struct kref *kref)
{
	struct hilbox_dev *hdev = container_of(kref, struct hilbox_dev, kref);

	hb_inode_put(hdev->inode);
	kvfree(hdev->ring);
	kfree(hdev);
}

static void hb_put(struct hilbox_dev *hdev)
{
	kref_put(&hdev->kref, hilbox_dev_release);
}

/* ------------------------------------------------------------------ */
/* event ring, ev_lock held                                            */

/* A record popped from the device: count it, then queue it. */
static void hb_ring_store(struct hilbox_dev *hdev, const struct hilbox_event *rec)
{
	u32 tail;

	hdev->ev_received++;
	if (hdev->last_seq && rec->seq > hdev->last_seq + 1)
		hdev->seq_gaps += rec->seq - hdev->last_seq - 1;
	hdev->last_seq = rec->seq;

	if (hdev->ring_count == hdev->ring_cap) {
		hdev->ring_drops++;
		return;
	}
	tail = hdev->ring_head + hdev->ring_count;
	if (tail >= hdev->ring_cap)
		tail -= hdev->ring_cap;
	hdev->ring[tail] = *rec;
	hdev->ring_count++;
}

/*
 * Copy up to @max records from the head of the ring to @to and consume
 * exactly those that reached it whole; *fault says a copy came up short.
 * Called with page faults disabled (ev_lock is a spinlock): a buffer that
 * is not present makes the copy short instead of sleeping, and nothing is
 * consumed that the reader did not get, so the ring head always holds the
 * oldest record not yet delivered.
 */
static unsigned int hb_ring_copy(struct hilbox_dev *hdev, struct iov_iter *to,
				 unsigned int max, bool *fault)
{
	const size_t sz = sizeof(struct hilbox_event);
	unsigned int n = min(max, hdev->ring_count), done = 0, run, whole, i;
	size_t len, got;

	*fault = false;
	/* records left behind: end at the last whole report that fits */
	if (n < hdev->ring_count) {
		for (i = n; i > 0; i--) {
			u32 at = hdev->ring_head + i - 1;

			if (at >= hdev->ring_cap)
				at -= hdev->ring_cap;
			if (hdev->ring[at].flags & HILBOX_EVF_END_OF_REPORT) {
				n = i;
				break;
			}
		}
	}
	while (done < n) {
		run = min(n - done, hdev->ring_cap - hdev->ring_head);
		len = run * sz;
		got = copy_to_iter(&hdev->ring[hdev->ring_head], len, to);
		whole = got / sz;
		/* a record is never split: take back a partial one */
		if (got % sz)
			iov_iter_revert(to, got % sz);
		hdev->ring_head += whole;
		if (hdev->ring_head == hdev->ring_cap)
			hdev->ring_head = 0;
		hdev->ring_count -= whole;
		done += whole;
		if (got < len) {
			*fault = true;
			break;
		}
	}
	return done;
}

/*
 * Records wait in the ring: wake the oldest pending read, or, with none
 * pending, tell the caller to wake pollers (outside ev_lock).
 */
static bool hb_wake_readers(struct hilbox_dev *hdev)
{
	struct hilbox_waiter *w;

	if (!hdev->ring_count)
		return false;
	w = list_first_entry_or_null(&hdev->waiters, struct hilbox_waiter, node);
	if (!w)
		return true;
	/* w lives on the reader's stack; it cannot leave before we unlock */
	wake_up_process(w->task);
	return false;
}

/*
 * Every poller, with @key (0: keyless): state changes all must see, and
 * each shared-ring batch.  One barrier for all the queues (pairs with the
 * one in poll_wait()'s add_wait_queue), then only queues with a sleeper
 * are locked and woken: a batch costs no 64 lock round trips.
 */
static void hb_wake_poll_all(struct hilbox_dev *hdev, __poll_t key)
{
	unsigned int i;

	smp_mb();
	for (i = 0; i < HB_POLLQ; i++) {
		if (!waitqueue_active(&hdev->pollq[i]))
			continue;
		if (key)
			wake_up_interruptible_poll(&hdev->pollq[i], key);
		else
			wake_up_interruptible(&hdev->pollq[i]);
	}
}

/*
 * Records arrived for pollers: wake the oldest armed one (the ring of
 * queues above).  Without a key: io_uring then asks hilbox_poll() again
 * from task work, and a request that finds nothing stays armed as it is,
 * instead of being re-issued, re-armed and after enough such rounds sent
 * to an io-wq worker whose blocking read posts its completion out of
 * order with the submitter's (INTERFACE.md 3, "Strict completion order").
 * With the shared-memory ring every poller and EV_RING_WAIT sleeper looks.
 */
static void hb_wake_pollers(struct hilbox_dev *hdev, bool all)
{
	unsigned int start, i, q;

	if (all) {
		hb_wake_poll_all(hdev, 0);
		wake_up_interruptible(&hdev->ringq);
		return;
	}
	start = READ_ONCE(hdev->poll_next);
	for (i = 0; i < HB_POLLQ; i++) {
		q = (start + i) % HB_POLLQ;
		if (wq_has_sleeper(&hdev->pollq[q])) {	/* pairs with poll_wait() */
			WRITE_ONCE(hdev->poll_next, (q + 1) % HB_POLLQ);
			wake_up_interruptible(&hdev->pollq[q]);
			return;
		}
	}
}

/* ev_lock held: one record into the shared-memory ring, or a drop. */
static void hb_evr_store(struct hilbox_dev *hdev, struct hb_ev_ring *evr,
			 const struct hilbox_event *rec)
{
	struct hilbox_ev_slot *slot;

	hdev->ev_received++;
	if (hdev->last_seq && rec->seq > hdev->last_seq + 1)
		hdev->seq_gaps += rec->seq - hdev->last_seq - 1;
	hdev->last_seq = rec->seq;

	if (evr->tail - evr->head >= evr->records) {
		evr->dropped++;
		hdev->ring_drops++;
		return;
	}
	slot = &evr->slots[evr->tail & (evr->records - 1)];
	slot->ev = *rec;
	smp_wmb();	/* the record before its position */
	WRITE_ONCE(slot->pos, evr->tail);
	evr->tail++;
	atomic64_inc(&hdev->ev_read);
}

/* ev_lock held: make a batch visible (tail after the slots). */
static void hb_evr_publish(struct hb_ev_ring *evr)
{
	smp_wmb();
	WRITE_ONCE(evr->hdr->tail, evr->tail);
	WRITE_ONCE(evr->hdr->dropped, evr->dropped);
	WRITE_ONCE(evr->hdr->wakeups, evr->hdr->wakeups + 1);
}

/* ------------------------------------------------------------------ */
/* interrupt                                                           */

static void hb_pop(struct hilbox_dev *hdev, struct hilbox_event *rec)
{
	u32 w[6];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(w); i++)
		w[i] = hb_rd(hdev, HB_REG_EV_HEAD + 4 * i);
	hb_wr(hdev, HB_REG_EV_POP, 1);

	rec->seq = (u64)w[1] << 32 | w[0];
	rec->timestamp_ns = (u64)w[3] << 32 | w[2];
	rec->dx = (s16)(w[4] & 0xffff);
	rec->dy = (s16)(w[4] >> 16);
	rec->wheel = (s8)(w[5] & 0xff);
	rec->buttons = (w[5] >> 8) & 0xff;
	rec->source = (w[5] >> 16) & 0xff;
	rec->flags = (w[5] >> 24) & 0xff;
}

/*
 * Hard IRQ: two register accesses.  Masking INT_MASK drops the line (INTx)
 * and keeps the device quiet (MSI) until the thread has drained the FIFO.
 */
static irqreturn_t hilbox_irq(int irq, void *data)
{
	struct hilbox_dev *hdev = data;
	irqreturn_t ret = IRQ_NONE;
	u32 status;

	spin_lock(&hdev->irq_lock);
	/* masked: the device is not asserting (another device on a shared line) */
	if (!hdev->irq_armed)
		goto out;
	status = hb_rd(hdev, HB_REG_INT_STATUS);
	if (!status && hdev->pdev->msi_enabled) {
		/* our own vector with nothing to report: counted, not "nobody cared" */
		hdev->irq_spurious++;	/* irq_lock; read racily by STATS */
		ret = IRQ_HANDLED;
		goto out;
	}
	if (!status || status == ~0u)	/* not ours, or device gone */
		goto out;
	hdev->irq_armed = false;
	hb_wr(hdev, HB_REG_INT_MASK, 0);
	ret = IRQ_WAKE_THREAD;
out:
	spin_unlock(&hdev->irq_lock);
	return ret;
}

/*
 * Threaded handler, SPEC section 7 (hb_drain): read INT_STATUS, pop while EV_COUNT > 0,
 * then ACK the bits read.  A record that arrives after the drain makes the
 * ACK re-assert EV_READY, which unmasking turns into a new interrupt, so
 * nothing is missed.  Records are popped in batches without ev_lock, each
 * batch is queued with ev_lock held for a few copies only, and the thread
 * reschedules between batches: readers never wait long for the lock.
 */
/*
 * Drains the FIFO and ACKs: the interrupt thread's work, and the
 * watchdog's when an interrupt was lost.  Returns false when the device
 * went away or its link dropped (the interrupt then stays masked; the
 * watchdog or removal takes over).
 */
static bool hb_drain(struct hilbox_dev *hdev, bool from_irq)
{
	struct hilbox_event *buf = hdev->pop_buf;
	u32 status, count, n, i, budget = HB_IRQ_BUDGET;
	bool wake_poll, wake_all, storm = false;

	mutex_lock(&hdev->drain_lock);
	if (hb_hw_enter(hdev))
		goto gone;
	status = hb_rd(hdev, HB_REG_INT_STATUS);
	hb_hw_exit(hdev);
	if (status == ~0u)
		goto gone;		/* link down: the watchdog will see it */

	while (budget) {
		if (hb_hw_enter(hdev))
			goto gone;
		count = hb_rd(hdev, HB_REG_EV_COUNT);
		if (count > hdev->info.ev_fifo_depth)	/* nonsense: stop */
			count = 0;
		n = min3(count, budget, (u32)HB_POP_BATCH);
		for (i = 0; i < n; i++)
			hb_pop(hdev, &buf[i]);
		hb_hw_exit(hdev);
		if (!n)
			break;
		budget -= n;

		spin_lock(&hdev->ev_lock);
		if (hdev->evr) {
			/* the shared-memory ring takes every record (3b) */
			for (i = 0; i < n; i++)
				hb_evr_store(hdev, hdev->evr, &buf[i]);
			hb_evr_publish(hdev->evr);
			wake_poll = wake_all = true;
		} else {
			for (i = 0; i < n; i++)
				hb_ring_store(hdev, &buf[i]);
			wake_poll = hb_wake_readers(hdev);
			wake_all = false;
		}
		spin_unlock(&hdev->ev_lock);
		if (wake_poll)
			hb_wake_pollers(hdev, wake_all);
		cond_resched();
	}

	/*
	 * A storm: EV_READY again and again with nothing to pop (a stuck
	 * interrupt).  After HB_STORM_RUNS such runs the interrupt stays
	 * masked; the watchdog drains and unmasks once a tick.
	 */
	if (from_irq && (status & HB_INT_EV_READY) && budget == HB_IRQ_BUDGET)
		storm = ++hdev->empty_runs >= HB_STORM_RUNS;
	else
		hdev->empty_runs = 0;

	if (hb_hw_enter(hdev))
		goto gone;
	/* records left over (budget) re-raise EV_READY through the ACK */
	hb_wr(hdev, HB_REG_INT_ACK, status);
	if (!storm) {
		spin_lock_irq(&hdev->irq_lock);
		hdev->irq_armed = true;
		hb_wr(hdev, HB_REG_INT_MASK, HB_INT_ALL);
		spin_unlock_irq(&hdev->irq_lock);
	}
	hb_hw_exit(hdev);
	if (storm) {
		hdev->empty_runs = 0;
		hdev->storm_masked = true;
		dev_warn_ratelimited(&hdev->pdev->dev,
				     "%s: interrupt storm (%u interrupts with nothing to read): masked, polled by the watchdog\n",
				     hdev->name, HB_STORM_RUNS);
	}
	mutex_unlock(&hdev->drain_lock);

	spin_lock(&hdev->ev_lock);
	if (from_irq)
		hdev->irq_count++;
	else
		hdev->fallback_drains++;
	if (status & HB_INT_EV_OVERFLOW)
		hdev->irq_overflows++;
	if (storm)
		hdev->irq_storms++;
	spin_unlock(&hdev->ev_lock);
	return true;
gone:
	mutex_unlock(&hdev->drain_lock);
	return false;
}

static irqreturn_t hilbox_irq_thread(int irq, void *data)
{
	struct hilbox_dev *hdev = data;

	hb_drain(hdev, true);
	return IRQ_HANDLED;
}

/* Arms or disarms the interrupt source (INT_MASK). */
static void hb_irq_arm(struct hilbox_dev *hdev, bool on)
{
	spin_lock_irq(&hdev->irq_lock);
	hdev->irq_armed = on;
	hb_wr(hdev, HB_REG_INT_MASK, on ? HB_INT_ALL : 0);
	spin_unlock_irq(&hdev->irq_lock);
}

/* ------------------------------------------------------------------ */
/* watchdog: link down / up, lost interrupts (INTERFACE.md 5a)         */

static void hb_link_went_down(struct hilbox_dev *hdev)
{
	struct hilbox_waiter *w;

	/* after every hardware access in flight, like removal */
	down_write(&hdev->hw_lock);
	if (hdev->dead || hdev->link_down || !hb_link_lost(hdev)) {
		up_write(&hdev->hw_lock);
		return;
	}
	hdev->link_down = true;
	hdev->link_down_at = ktime_get_ns();
	up_write(&hdev->hw_lock);
	dev_warn(&hdev->pdev->dev, "%s: link down (ID reads all ones)\n", hdev->name);

	/* mappings revoked: the fault handler refuses while the link is down */
	unmap_mapping_range(hdev->inode->i_mapping, 0, 0, 1);

	spin_lock(&hdev->ev_lock);
	hdev->ev_link_down = true;
	hdev->link_downs++;
	list_for_each_entry(w, &hdev->waiters, node)
		wake_up_process(w->task);
	if (hdev->evr)
		WRITE_ONCE(hdev->evr->hdr->state, HILBOX_EV_RING_LINK_DOWN);
	spin_unlock(&hdev->ev_lock);
	wake_up_interruptible(&hdev->ringq);
	hb_wake_poll_all(hdev, EPOLLIN | EPOLLRDNORM | EPOLLERR);
}

static void hb_link_came_back(struct hilbox_dev *hdev)
{
	bool on;

	down_write(&hdev->hw_lock);
	if (hdev->dead || !hdev->link_down || hb_link_lost(hdev)) {
		up_write(&hdev->hw_lock);
		return;
	}
	hdev->link_down = false;
	up_write(&hdev->hw_lock);
	dev_info(&hdev->pdev->dev, "%s: link up after %llu ms\n", hdev->name,
		 div_u64(ktime_get_ns() - hdev->link_down_at, NSEC_PER_MSEC));

	/* the registers from the driver's state: events as subscribed, interrupt armed */
	mutex_lock(&hdev->ctl_lock);
	spin_lock(&hdev->sub_lock);
	on = hdev->subscribers != 0;
	spin_unlock(&hdev->sub_lock);
	if (!hb_hw_enter(hdev)) {
		hb_wr(hdev, HB_REG_CONTROL, on ? HB_CONTROL_EV_ENABLE : 0);
		hdev->ev_enabled = on;
		hb_irq_arm(hdev, true);
		hb_hw_exit(hdev);
	}
	mutex_unlock(&hdev->ctl_lock);

	spin_lock(&hdev->ev_lock);
	hdev->ev_link_down = false;
	if (hdev->evr)
		WRITE_ONCE(hdev->evr->hdr->state, HILBOX_EV_RING_LIVE);
	spin_unlock(&hdev->ev_lock);
	hb_wake_poll_all(hdev, EPOLLOUT);	/* pollers re-evaluate */
}

static void hb_watchdog(struct work_struct *work)
{
	struct hilbox_dev *hdev = container_of(to_delayed_work(work),
					       struct hilbox_dev, watchdog);
	unsigned int period = READ_ONCE(watchdog_ms);
	bool lost, down, stuck = false;
	u64 irqs;

	if (!period) {
		schedule_delayed_work(&hdev->watchdog, HZ);	/* off: look again later */
		return;
	}
	down_read(&hdev->hw_lock);
	if (hdev->dead) {
		up_read(&hdev->hw_lock);
		return;
	}
	down = hdev->link_down;
	lost = hb_link_lost(hdev);
	stuck = READ_ONCE(hdev->storm_masked);	/* drain and unmask once a tick */
	if (!down && !lost && hb_rd(hdev, HB_REG_EV_COUNT)) {
		spin_lock(&hdev->ev_lock);
		irqs = hdev->irq_count;
		spin_unlock(&hdev->ev_lock);
		/* records wait and no interrupt came since the last tick */
		stuck |= irqs == hdev->wd_irq_seen;
		hdev->wd_irq_seen = irqs;
	}
	up_read(&hdev->hw_lock);

	if (!down && lost)
		hb_link_went_down(hdev);
	else if (down && !lost)
		hb_link_came_back(hdev);
	else if (stuck) {
		WRITE_ONCE(hdev->storm_masked, false);
		hb_drain(hdev, false);
	}
	/* records queued for pollers: make sure one looks (a woken poller can lose a race) */
	spin_lock(&hdev->ev_lock);
	stuck = hdev->ring_count && list_empty(&hdev->waiters) && !hdev->evr;
	spin_unlock(&hdev->ev_lock);
	if (stuck)
		hb_wake_pollers(hdev, false);
	schedule_delayed_work(&hdev->watchdog, msecs_to_jiffies(period));
}

/* ------------------------------------------------------------------ */
/* event subscription                                                  */

/* CONTROL.EV_ENABLE := subscribers != 0.  Converges: the last call wins. */
static void hb_sync_events(struct hilbox_dev *hdev)
{
	bool on;

	mutex_lock(&hdev->ctl_lock);
	spin_lock(&hdev->sub_lock);
	on = hdev->subscribers != 0;
	spin_unlock(&hdev->sub_lock);
	if (on != hdev->ev_enabled && !hb_hw_enter(hdev)) {
		hb_wr(hdev, HB_REG_CONTROL, on ? HB_CONTROL_EV_ENABLE : 0);
		hb_hw_exit(hdev);
		hdev->ev_enabled = on;
	}
	mutex_unlock(&hdev->ctl_lock);
}

static void hb_sub_work(struct work_struct *work)
{
	hb_sync_events(container_of(work, struct hilbox_dev, sub_work));
}

/* The same from a context that must not sleep (poll, non-blocking read). */
static void hb_sync_events_async(struct hilbox_dev *hdev)
{
	spin_lock(&hdev->sub_lock);
	if (!hdev->sub_closed)
		schedule_work(&hdev->sub_work);
	spin_unlock(&hdev->sub_lock);
}

/*
 * Sets the file's subscription (@only_auto: only if it never chose one).
 * Returns true when the subscriber count went 0 -> 1 or 1 -> 0, i.e. when
 * CONTROL.EV_ENABLE has to follow.
 */
static bool hb_set_sub(struct hilbox_file *hf, enum hb_sub sub, bool only_auto)
{
	struct hilbox_dev *hdev = hf->hdev;
	bool was_on, on = sub == HB_SUB_ON, edge = false;

	spin_lock(&hdev->sub_lock);
	if (only_auto && hf->sub != HB_SUB_AUTO)
		goto out;
	was_on = hf->sub == HB_SUB_ON;
	WRITE_ONCE(hf->sub, sub);
	if (on && !was_on)
		edge = hdev->subscribers++ == 0;
	else if (!on && was_on)
		edge = --hdev->subscribers == 0;
out:
	spin_unlock(&hdev->sub_lock);
	return edge;
}

/* First read()/poll() of a file that never used HILBOX_IOC_SET_EVENTS. */
static void hb_auto_subscribe(struct hilbox_file *hf, bool nowait)
{
	if (READ_ONCE(hf->sub) != HB_SUB_AUTO || !hb_set_sub(hf, HB_SUB_ON, true))
		return;
	if (nowait)
		hb_sync_events_async(hf->hdev);
	else
		hb_sync_events(hf->hdev);
}

/* ------------------------------------------------------------------ */
/* file operations                                                     */

static int hilbox_open(struct inode *inode, struct file *file)
{
	/* misc_open() holds misc_mtx: the device cannot be deregistered */
	struct miscdevice *misc = file->private_data;
	struct hilbox_dev *hdev = container_of(misc, struct hilbox_dev, misc);
	struct hilbox_file *hf;
	int ret;

	if (!(file->f_mode & FMODE_READ))
		return -EINVAL;

	hf = kzalloc(sizeof(*hf), GFP_KERNEL);
	if (!hf)
		return -ENOMEM;

	ret = hb_hw_enter(hdev);
	if (ret)
		goto err_free;
	kref_get(&hdev->kref);
	hb_hw_exit(hdev);

	ret = stream_open(inode, file);
	if (ret)
		goto err_put;

	hf->hdev = hdev;
	hf->sub = HB_SUB_AUTO;
	atomic64_set(&hf->next_frame, 0);
	file->private_data = hf;
	/* all mappings of this device live in one revocable address_space */
	file->f_mapping = hdev->inode->i_mapping;
	file->f_mode |= FMODE_NOWAIT;
	return 0;

err_put:
	hb_put(hdev);
err_free:
	kfree(hf);
	return ret;
}

static int hilbox_release(struct inode *inode, struct file *file)
{
	struct hilbox_file *hf = file->private_data;
	struct hilbox_dev *hdev = hf->hdev;

	if (hb_set_sub(hf, HB_SUB_OFF, false))
		hb_sync_events(hdev);

	/* no mapping is left (each holds the file): the ring can go */
	if (hf->evr) {
		spin_lock(&hdev->ev_lock);
		if (hdev->evr == hf->evr)
			hdev->evr = NULL;
		spin_unlock(&hdev->ev_lock);
		vfree(hf->evr->mem);
		kfree(hf->evr);
	}

	hb_put(hdev);
	kfree(hf);
	return 0;
}

/*
 * ev_lock held, @w queued: sleep until @w heads the queue while records
 * wait, the device is removed or a signal arrives.
 */
static int hb_wait_turn(struct hilbox_dev *hdev, struct hilbox_waiter *w)
{
	int ret = 0;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (hdev->ev_dead) {
			ret = -ENODEV;
			break;
		}
		if (hdev->ev_link_down) {
			ret = -EIO;
			break;
		}
		if (hdev->ring_count &&
		    list_first_entry(&hdev->waiters, struct hilbox_waiter, node) == w)
			break;
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		spin_unlock(&hdev->ev_lock);
		schedule();
		spin_lock(&hdev->ev_lock);
	}
	__set_current_state(TASK_RUNNING);
	return ret;
}

static ssize_t hilbox_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	const size_t sz = sizeof(struct hilbox_event);
	struct file *file = iocb->ki_filp;
	struct hilbox_file *hf = file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	bool nowait = (iocb->ki_flags & IOCB_NOWAIT) ||
		      (file->f_flags & O_NONBLOCK);
	struct hilbox_waiter w = { .task = current };
	size_t count = iov_iter_count(to);
	unsigned int want, n = 0, tries = 0;
	bool queued, fault = false, wake_poll = false;
	ssize_t ret;

	/* a record is never split: too small a buffer consumes nothing */
	if (count < sz)
		return -EINVAL;
	want = min_t(size_t, count / sz, HB_READ_BATCH);

	hb_auto_subscribe(hf, nowait);

	/* records are copied with page faults disabled: fault the buffer in now */
	if (fault_in_iov_iter_writeable(to, want * sz) > (want - 1) * sz)
		return -EFAULT;

again:
	queued = false;
	spin_lock(&hdev->ev_lock);
	if (hdev->ev_dead) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (hdev->ev_link_down) {
		ret = -EIO;
		goto out_unlock;
	}
	/*
	 * No blocking read in an io_uring worker (io_uring's fallback when a
	 * poll-driven retry found nothing): it would take records in the
	 * worker and post its completion from there, possibly after the
	 * submitting task posted one for a newer record (INTERFACE.md 3,
	 * "Strict completion order").  It completes with EAGAIN instead; the
	 * records go to the reads the submitting task issues.
	 */
	if (!nowait && (current->flags & PF_IO_WORKER)) {
		ret = -EAGAIN;
		goto out_unlock;
	}
	/* while reads are queued, the ring belongs to the oldest of them */
	if (!hdev->ring_count || !list_empty(&hdev->waiters)) {
		if (nowait) {
			ret = -EAGAIN;
			goto out_unlock;
		}
		list_add_tail(&w.node, &hdev->waiters);
		hdev->nr_waiters++;
		queued = true;
		ret = hb_wait_turn(hdev, &w);
		if (ret)
			goto out_unlock;
	}
	/* taking and copying under ev_lock: records leave the ring in order */
	pagefault_disable();
	n = hb_ring_copy(hdev, to, want, &fault);
	pagefault_enable();
	ret = n * sz;
	/* records left behind: the next poller's turn (one was woken for them) */
	if (!queued && hdev->ring_count && list_empty(&hdev->waiters))
		wake_poll = true;
out_unlock:
	if (queued) {
		list_del(&w.node);
		hdev->nr_waiters--;
		/* the next read's turn, or pollers', if records are left */
		wake_poll = hb_wake_readers(hdev);
	}
	spin_unlock(&hdev->ev_lock);
	if (wake_poll)
		hb_wake_pollers(hdev, false);

	if (!ret && fault) {
		/* nothing reached user space and nothing was consumed */
		if (++tries > HB_FAULT_RETRIES ||
		    fault_in_iov_iter_writeable(to, sz))
			return -EFAULT;
		goto again;
	}
	if (ret > 0)
		atomic64_add(n, &hdev->ev_read);
	return ret;
}

static __poll_t hilbox_poll(struct file *file, poll_table *wait)
{
	struct hilbox_file *hf = file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	__poll_t mask = 0;

	hb_auto_subscribe(hf, true);	/* never sleeps */
	/* an arming poll joins the queue after the last one armed */
	if (!poll_does_not_wait(wait))
		poll_wait(file, &hdev->pollq[(unsigned int)atomic_inc_return(&hdev->poll_arm) % HB_POLLQ], wait);
	spin_lock(&hdev->ev_lock);
	if (hdev->ev_dead)
		mask = EPOLLIN | EPOLLRDNORM | EPOLLHUP | EPOLLERR;
	else if (hdev->ev_link_down)
		mask = EPOLLIN | EPOLLRDNORM | EPOLLERR;	/* a read says EIO */
	else if (hf->evr)
		mask = hf->evr->tail != hf->evr->head ? EPOLLIN | EPOLLRDNORM : 0;
	else if (hdev->ring_count && list_empty(&hdev->waiters))
		mask = EPOLLIN | EPOLLRDNORM;	/* a read gets a record now */
	spin_unlock(&hdev->ev_lock);
	return mask;
}

/* ------------------------------------------------------------------ */
/* mapping                                                             */

static vm_fault_t hilbox_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct hilbox_file *hf = vma->vm_file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	unsigned long npages = hdev->fb_len >> PAGE_SHIFT;
	unsigned long pfn = PHYS_PFN(hdev->fb_phys);
	unsigned long addr, pgoff;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	unsigned int i;

	if (vmf->flags & FAULT_FLAG_WRITE)
		return VM_FAULT_SIGBUS;

	/* hw_lock orders us against removal: dead => SIGBUS, else zapped */
	down_read(&hdev->hw_lock);
	if (hdev->dead || hdev->link_down || vmf->pgoff >= npages)
		goto out;
	ret = vmf_insert_pfn(vma, vmf->address, pfn + vmf->pgoff);
	if (ret & VM_FAULT_ERROR)
		goto out;

	/* populate ahead: a frame is read sequentially */
	addr = (vmf->address & PAGE_MASK) + PAGE_SIZE;
	pgoff = vmf->pgoff + 1;
	for (i = 1; i < HB_FAULT_AROUND; i++, addr += PAGE_SIZE, pgoff++) {
		if (addr >= vma->vm_end || pgoff >= npages)
			break;
		if (vmf_insert_pfn(vma, addr, pfn + pgoff) & VM_FAULT_ERROR)
			break;
	}
out:
	up_read(&hdev->hw_lock);
	return ret;
}

/* no .access: ptrace and /proc/pid/mem cannot reach the framebuffer */
static const struct vm_operations_struct hilbox_vm_ops = {
	.fault = hilbox_vm_fault,
};

static void hb_vma_set_flags(struct vm_area_struct *vma, unsigned long set,
			     unsigned long clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags & ~clear) | set;
#endif
}

#define HB_EVR_PGOFF	(HILBOX_EV_RING_MMAP_OFFSET >> PAGE_SHIFT)

/*
 * The ring's pages: the driver's own vmalloc memory, inserted read-only
 * on fault (never at mmap time) under hw_lock like BAR2's, so removal
 * revokes them with the device's other mappings and no fault can put one
 * back afterwards.  A link down zaps them too; they fault back at once.
 */
static vm_fault_t hb_evr_fault(struct vm_fault *vmf)
{
	struct hilbox_file *hf = vmf->vma->vm_file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	struct hb_ev_ring *evr = READ_ONCE(hf->evr);
	unsigned long idx = vmf->pgoff - HB_EVR_PGOFF;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	if ((vmf->flags & FAULT_FLAG_WRITE) || !evr || vmf->pgoff < HB_EVR_PGOFF ||
	    idx >= (evr->bytes >> PAGE_SHIFT))
		return VM_FAULT_SIGBUS;
	down_read(&hdev->hw_lock);
	if (!hdev->dead)
		ret = vmf_insert_pfn(vmf->vma, vmf->address,
				     vmalloc_to_pfn((char *)evr->mem + (idx << PAGE_SHIFT)));
	up_read(&hdev->hw_lock);
	return ret;
}

/* no .access: ptrace and /proc/pid/mem cannot reach the ring either */
static const struct vm_operations_struct hb_evr_vm_ops = {
	.fault = hb_evr_fault,
};

static int hb_evr_mmap(struct hilbox_file *hf, struct vm_area_struct *vma)
{
	struct hilbox_dev *hdev = hf->hdev;
	struct hb_ev_ring *evr;

	spin_lock(&hdev->ev_lock);
	evr = hf->evr;
	spin_unlock(&hdev->ev_lock);
	if (!evr || vma->vm_end - vma->vm_start != evr->bytes)
		return -EINVAL;
	if (READ_ONCE(hdev->dead))
		return -ENODEV;
	hb_vma_set_flags(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP,
			 VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_ops = &hb_evr_vm_ops;
	return 0;
}

static int hilbox_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct hilbox_file *hf = file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	unsigned long npages = hdev->fb_len >> PAGE_SHIFT;
	unsigned long len = vma_pages(vma);
	int ret;

	/*
	 * MAP_SHARED only: an O_RDONLY file drops VM_SHARED but keeps
	 * VM_MAYSHARE, MAP_PRIVATE has neither.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	if (vma->vm_pgoff == HB_EVR_PGOFF)
		return hb_evr_mmap(hf, vma);
	if (vma->vm_pgoff >= npages || len > npages - vma->vm_pgoff)
		return -EINVAL;

	ret = hb_hw_enter(hdev);
	if (ret)
		return ret;
	/* no later mprotect(PROT_WRITE|PROT_EXEC), no growth, no core dump */
	hb_vma_set_flags(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP,
			 VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_page_prot = hdev->fb_wc ?
			    pgprot_writecombine(vma->vm_page_prot) :
			    pgprot_noncached(vma->vm_page_prot);
	vma->vm_ops = &hilbox_vm_ops;
	hb_hw_exit(hdev);
	return 0;
}

/* ------------------------------------------------------------------ */
/* ioctls                                                              */

static long hb_ioc_info(struct hilbox_dev *hdev, void __user *uarg)
{
	if (copy_to_user(uarg, &hdev->info, sizeof(hdev->info)))
		return -EFAULT;
	return 0;
}

static long hb_ioc_stats(struct hilbox_dev *hdev, void __user *uarg)
{
	struct hilbox_stats st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = hb_hw_enter(hdev);
	if (ret)
		return ret;
	st.frame_seq = hb_rd(hdev, HB_REG_FRAME_SEQ);
	st.frames_produced = hb_rd64(hdev, HB_REG_FRAMES_PRODUCED);
	st.frame_number = hb_rd64(hdev, HB_REG_FRAME_NUMBER);
	st.frame_timestamp = hb_rd64(hdev, HB_REG_FRAME_TS);
	st.fb_write_attempts = hb_rd64(hdev, HB_REG_FB_WRITES);
	st.ev_produced = hb_rd64(hdev, HB_REG_EV_PRODUCED);
	st.ev_delivered = hb_rd64(hdev, HB_REG_EV_DELIVERED);
	st.ev_dropped = hb_rd64(hdev, HB_REG_EV_DROPPED);
	st.ev_count = hb_rd(hdev, HB_REG_EV_COUNT);
	st.feed_errors = hb_rd(hdev, HB_REG_FEED_ERRORS);
	hb_hw_exit(hdev);

	spin_lock(&hdev->ev_lock);
	st.drv_ev_received = hdev->ev_received;
	st.drv_ring_drops = hdev->ring_drops;
	st.drv_seq_gaps = hdev->seq_gaps;
	st.drv_flushed = hdev->flushed;
	st.irq_count = hdev->irq_count;
	st.irq_overflows = hdev->irq_overflows;
	st.link_downs = hdev->link_downs;
	st.fallback_drains = hdev->fallback_drains;
	st.irq_storms = hdev->irq_storms;
	st.irq_spurious = READ_ONCE(hdev->irq_spurious);
	st.ring_level = hdev->ring_count;
	st.readers_waiting = hdev->nr_waiters;
	spin_unlock(&hdev->ev_lock);
	st.drv_ev_read = atomic64_read(&hdev->ev_read);
	st.subscribers = READ_ONCE(hdev->subscribers);

	if (copy_to_user(uarg, &st, sizeof(st)))
		return -EFAULT;
	return 0;
}

static long hb_ioc_clock(struct hilbox_dev *hdev, void __user *uarg)
{
	struct hilbox_clock clk;
	int ret;

	memset(&clk, 0, sizeof(clk));
	ret = hb_hw_enter(hdev);
	if (ret)
		return ret;
	clk.device_ns = hb_rd64(hdev, HB_REG_DEVICE_CLOCK);
	clk.monotonic_ns = ktime_get_ns();
	hb_hw_exit(hdev);

	if (copy_to_user(uarg, &clk, sizeof(clk)))
		return -EFAULT;
	return 0;
}

static long hb_ioc_frame_state(struct hilbox_dev *hdev, void __user *uarg)
{
	struct hilbox_frame_state fs;
	int ret;

	memset(&fs, 0, sizeof(fs));
	ret = hb_hw_enter(hdev);
	if (ret)
		return ret;
	fs.frame_seq = hb_rd(hdev, HB_REG_FRAME_SEQ);
	fs.frame_number = hb_rd64(hdev, HB_REG_FRAME_NUMBER);
	fs.frame_timestamp = hb_rd64(hdev, HB_REG_FRAME_TS);
	fs.device_ns = hb_rd64(hdev, HB_REG_DEVICE_CLOCK);
	hb_hw_exit(hdev);

	if (copy_to_user(uarg, &fs, sizeof(fs)))
		return -EFAULT;
	return 0;
}

static long hb_ioc_set_events(struct hilbox_file *hf, void __user *uarg)
{
	struct hilbox_dev *hdev = hf->hdev;
	struct hilbox_events_ctl ctl;
	unsigned int i;

	if (copy_from_user(&ctl, uarg, sizeof(ctl)))
		return -EFAULT;
	if (ctl.enable > 1 || (ctl.flags & ~HILBOX_EVCTL_ALL) ||
	    ctl.subscribers || ctl.ring_level)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(ctl.reserved); i++)
		if (ctl.reserved[i])
			return -EINVAL;
	if (READ_ONCE(hdev->dead))
		return -ENODEV;

	if (hb_set_sub(hf, ctl.enable ? HB_SUB_ON : HB_SUB_OFF, false))
		hb_sync_events(hdev);
	spin_lock(&hdev->sub_lock);
	ctl.subscribers = hdev->subscribers;
	spin_unlock(&hdev->sub_lock);

	spin_lock(&hdev->ev_lock);
	if (ctl.flags & HILBOX_EVCTL_FLUSH) {
		hdev->flushed += hdev->ring_count;
		hdev->ring_count = 0;
		hdev->ring_head = 0;
	}
	ctl.ring_level = hdev->ring_count;
	spin_unlock(&hdev->ev_lock);

	if (copy_to_user(uarg, &ctl, sizeof(ctl)))
		return -EFAULT;
	return 0;
}

/*
 * BAR2 to a kernel buffer with the widest single accesses (8 bytes): every
 * access may trap to the device model (fb-mode=mmio, or TCG), so fewer and
 * wider accesses are what makes a frame copy fit into one frame period.
 */
static void hb_copy_fromio(void *dst, const void __iomem *src, size_t len)
{
	size_t i, n = len / sizeof(u64);
	u64 *d = dst;

	for (i = 0; i < n; i++)
		d[i] = readq(src + i * sizeof(u64));
	if (len % sizeof(u64))
		memcpy_fromio(d + n, src + n * sizeof(u64), len % sizeof(u64));
}

/*
 * BAR2 bytes [off, off + len) into @dst.  In fb-mode=mmio every access traps
 * and may take up to 100 us, so hw_lock is held for one slice of 64 accesses
 * only: removal waits for a slice, not a chunk, and a pending signal
 * (SIGKILL included) ends the copy within a slice.
 */
static int hb_copy_bar2(struct hilbox_dev *hdev, void *dst, size_t off, size_t len)
{
	size_t slice = hdev->info.fb_mode == HILBOX_FB_MODE_MMIO ?
		       HB_COPY_SLICE_MMIO : len;
	size_t done, n;
	int ret;

	for (done = 0; done < len; done += n) {
		n = min(len - done, slice);
		ret = hb_hw_enter(hdev);
		if (ret)
			return ret;
		hb_copy_fromio(dst + done, hdev->fb + off + done, n);
		hb_hw_exit(hdev);
		if (signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

/*
 * fb-mode=direct (BAR2 prefetchable): BAR2 bytes [off, off + len) straight
 * into user memory, one pass, no bounce buffer.  The copy runs under hw_lock
 * with page faults disabled, so it never sleeps on the user buffer (a page
 * not present, userfaultfd) while removal may be waiting for the lock: a
 * short copy drops the lock, faults the rest in without it, and goes on.
 * Prefetchable memory takes ordinary loads of any width and alignment.
 * The caller has checked access_ok() for the whole buffer.
 */
static int hb_copy_bar2_user(struct hilbox_dev *hdev, u8 __user *dst, size_t off, size_t len)
{
	size_t done = 0, left;
	int ret;

	while (done < len) {
		ret = hb_hw_enter(hdev);
		if (ret)
			return ret;
		pagefault_disable();
		left = __copy_to_user_inatomic(dst + done,
					       (const void __force *)(hdev->fb + off + done),
					       len - done);
		pagefault_enable();
		hb_hw_exit(hdev);
		done = len - left;
		if (left && fault_in_writeable((char __user *)dst + done, left) == left)
			return -EFAULT;
		if (signal_pending(current))
			return -EINTR;
	}
	cond_resched();
	return 0;
}

/* Sleep until FRAME_SEQ differs from @seq and is even, bounded by @deadline. */
static int hb_wait_seq(struct hilbox_dev *hdev, u32 seq, bool wait_change,
		       u64 deadline, u32 *out)
{
	int ret;

	for (;;) {
		ret = hb_hw_enter(hdev);
		if (ret)
			return ret;
		*out = hb_rd(hdev, HB_REG_FRAME_SEQ);
		if (!(*out & 1) && (!wait_change || *out != seq))
			return 0;	/* hw_lock still held */
		if (*out == ~0u && hb_link_lost(hdev)) {
			hb_hw_exit(hdev);
			return -EIO;	/* nobody answers: no frame will come */
		}
		hb_hw_exit(hdev);
		if (signal_pending(current))
			return -EINTR;
		if (ktime_get_ns() > deadline)
			return -ETIMEDOUT;
		usleep_range(20, 100);
	}
}

/*
 * One attempt; returns 0 and fills *s1, *s2 or a negative errno.  After a
 * failed attempt (@after_seq valid) it first waits for the next frame, so
 * the copy gets a whole frame period.  @bounce NULL: fb-mode=direct, BAR2 is
 * copied to user memory directly; else through @bounce (fb-mode=mmio).
 */
static int hb_copy_once(struct hilbox_dev *hdev, struct hilbox_copy_frame *cf,
			void *bounce, bool seqlock, bool wait_next,
			u32 after_seq, u32 *s1, u32 *s2)
{
	u8 __user *dst = u64_to_user_ptr(cf->buf);
	u64 period = div_u64(NSEC_PER_SEC, max(hdev->info.fps, 1U));
	u64 deadline = ktime_get_ns() + HB_ODD_SEQ_WAIT_NS + 2 * period;
	size_t off, chunk, len = cf->bytes_copied;
	int ret;

	if (seqlock) {
		/* even FRAME_SEQ (and a new one after a failure) */
		ret = hb_wait_seq(hdev, after_seq, wait_next, deadline, s1);
		if (ret)
			return ret;
	} else {
		ret = hb_hw_enter(hdev);
		if (ret)
			return ret;
		*s1 = hb_rd(hdev, HB_REG_FRAME_SEQ);
	}
	rmb();	/* FRAME_NUMBER and the pixels after FRAME_SEQ */
	cf->frame_number = hb_rd64(hdev, HB_REG_FRAME_NUMBER);
	cf->frame_timestamp = hb_rd64(hdev, HB_REG_FRAME_TS);
	hb_hw_exit(hdev);

	/* hw_lock is never held across a user fault: see hb_copy_bar2_user() */
	for (off = 0; off < len; off += chunk) {
		chunk = min_t(size_t, len - off, HB_COPY_CHUNK);
		if (!bounce) {
			ret = hb_copy_bar2_user(hdev, dst + off, off, chunk);
			if (ret)
				return ret;
			continue;
		}
		ret = hb_copy_bar2(hdev, bounce, off, chunk);
		if (ret)
			return ret;
		if (copy_to_user(dst + off, bounce, chunk))
			return -EFAULT;
	}

	ret = hb_hw_enter(hdev);
	if (ret)
		return ret;
	rmb();	/* the pixels before the second FRAME_SEQ read */
	*s2 = hb_rd(hdev, HB_REG_FRAME_SEQ);
	hb_hw_exit(hdev);
	return 0;
}

static long hb_ioc_copy_frame(struct hilbox_file *hf, void __user *uarg)
{
	struct hilbox_dev *hdev = hf->hdev;
	struct hilbox_copy_frame cf;
	u32 max_retries, s1 = 0, s2 = 0;
	u64 t0 = ktime_get_ns();
	u64 prev;
	bool seqlock;
	void *bounce;
	unsigned int i;
	long ret;

	if (copy_from_user(&cf, uarg, sizeof(cf)))
		return -EFAULT;
	if (!cf.buf_len || (cf.flags & ~HILBOX_COPY_ALL) ||
	    cf.max_retries > HB_MAX_RETRIES || cf.reserved0)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cf.reserved); i++)
		if (cf.reserved[i])
			return -EINVAL;
	if (READ_ONCE(hdev->dead))
		return -ENODEV;

	seqlock = !(cf.flags & HILBOX_COPY_NO_SEQLOCK);
	max_retries = cf.max_retries ? cf.max_retries :
		      min_t(u32, READ_ONCE(copy_retries), HB_MAX_RETRIES);
	cf.bytes_copied = min_t(u64, cf.buf_len, hdev->info.fb_bytes);
	cf.retries = 0;

	if (hdev->fb_wc) {
		/* BAR2 is prefetchable memory: one pass, no bounce buffer */
		bounce = NULL;
		if (!access_ok(u64_to_user_ptr(cf.buf), cf.bytes_copied))
			return -EFAULT;
	} else {
		/* every access traps: wide loads into a bounce buffer, in slices */
		bounce = kvmalloc(HB_COPY_CHUNK, GFP_KERNEL);
		if (!bounce)
			return -ENOMEM;
	}

	/* test_copy_extra_passes: wasted work, overwritten by the real copy below */
	for (i = 0; i < min_t(unsigned int, READ_ONCE(test_copy_extra_passes),
			      HB_TEST_EXTRA_PASSES_MAX); i++) {
		ret = hb_copy_once(hdev, &cf, bounce, false, false, 0, &s1, &s2);
		if (ret)
			goto out;
	}

	for (;;) {
		ret = hb_copy_once(hdev, &cf, bounce, seqlock, cf.retries > 0,
				   s2, &s1, &s2);
		if (ret)
			goto out;
		if (!seqlock || s1 == s2)
			break;
		if (cf.retries >= max_retries) {
			ret = -EAGAIN;
			goto out;
		}
		cf.retries++;
	}

	cf.frame_seq = s1;
	cf.frame_seq_end = s2;
	prev = atomic64_xchg(&hf->next_frame, cf.frame_number + 1);
	cf.frames_dropped = (prev && cf.frame_number > prev) ?
			    cf.frame_number - prev : 0;
	cf.copy_ns = ktime_get_ns() - t0;
	ret = copy_to_user(uarg, &cf, sizeof(cf)) ? -EFAULT : 0;
out:
	kvfree(bounce);
	return ret;
}

/* HILBOX_IOC_EV_RING: attach the shared-memory ring to this file (3b). */
static long hb_ioc_ev_ring(struct hilbox_file *hf, void __user *uarg)
{
	struct hilbox_dev *hdev = hf->hdev;
	struct hilbox_ev_ring_setup rs;
	struct hb_ev_ring *evr;
	long ret = 0;

	if (copy_from_user(&rs, uarg, sizeof(rs)))
		return -EFAULT;
	if (rs.flags || rs.mmap_offset || rs.mmap_bytes || rs.reserved[0] ||
	    rs.reserved[1] || rs.reserved[2] || rs.records < HILBOX_EV_RING_MIN ||
	    rs.records > HILBOX_EV_RING_MAX || !is_power_of_2(rs.records))
		return -EINVAL;

	evr = kzalloc(sizeof(*evr), GFP_KERNEL);
	if (!evr)
		return -ENOMEM;
	evr->records = rs.records;
	evr->bytes = PAGE_SIZE + PAGE_ALIGN((size_t)rs.records * sizeof(struct hilbox_ev_slot));
	evr->mem = vmalloc_user(evr->bytes);	/* zeroed */
	if (!evr->mem) {
		kfree(evr);
		return -ENOMEM;
	}
	evr->hdr = evr->mem;
	evr->slots = (struct hilbox_ev_slot *)((char *)evr->mem + PAGE_SIZE);
	evr->hdr->magic = HILBOX_EV_RING_MAGIC;
	evr->hdr->version = HILBOX_EV_RING_VERSION;
	evr->hdr->records = rs.records;
	evr->hdr->slot_size = sizeof(struct hilbox_ev_slot);
	evr->hdr->slots_offset = PAGE_SIZE;

	spin_lock(&hdev->ev_lock);
	if (hdev->ev_dead)
		ret = -ENODEV;
	else if (hdev->ev_link_down)
		ret = -EIO;
	else if (hdev->evr)
		ret = -EBUSY;
	else {
		hdev->evr = evr;
		hf->evr = evr;
	}
	spin_unlock(&hdev->ev_lock);
	if (ret) {
		vfree(evr->mem);
		kfree(evr);
		return ret;
	}
	rs.mmap_offset = HILBOX_EV_RING_MMAP_OFFSET;
	rs.mmap_bytes = evr->bytes;
	return copy_to_user(uarg, &rs, sizeof(rs)) ? -EFAULT : 0;
}

/* HILBOX_IOC_EV_RING_WAIT: release up to head, wait for records (3b). */
static long hb_ioc_ev_ring_wait(struct hilbox_file *hf, void __user *uarg)
{
	struct hilbox_dev *hdev = hf->hdev;
	struct hb_ev_ring *evr = READ_ONCE(hf->evr);
	struct hilbox_ev_ring_wait rw;
	long ret = 0, left;

	if (copy_from_user(&rw, uarg, sizeof(rw)))
		return -EFAULT;
	if (!evr || rw.flags || rw.tail || rw.dropped || rw.reserved[0] ||
	    rw.reserved[1] || rw.timeout_ms > 60000)
		return -EINVAL;
	hb_auto_subscribe(hf, false);

	spin_lock(&hdev->ev_lock);
	/* forward only, never past what was written */
	if (rw.head - evr->head > evr->tail - evr->head) {
		spin_unlock(&hdev->ev_lock);
		return -EINVAL;
	}
	evr->head = rw.head;
	WRITE_ONCE(evr->hdr->head, rw.head);
	spin_unlock(&hdev->ev_lock);

	if (rw.timeout_ms) {
		left = wait_event_interruptible_timeout(hdev->ringq,
			READ_ONCE(evr->tail) != rw.head || READ_ONCE(hdev->ev_dead) ||
			READ_ONCE(hdev->ev_link_down),
			msecs_to_jiffies(rw.timeout_ms));
		if (left < 0)
			return -EINTR;
	}
	spin_lock(&hdev->ev_lock);
	if (hdev->ev_dead)
		ret = -ENODEV;
	else if (hdev->ev_link_down)
		ret = -EIO;
	rw.tail = evr->tail;
	rw.dropped = evr->dropped;
	spin_unlock(&hdev->ev_lock);
	if (ret)
		return ret;
	return copy_to_user(uarg, &rw, sizeof(rw)) ? -EFAULT : 0;
}

static long hilbox_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct hilbox_file *hf = file->private_data;
	struct hilbox_dev *hdev = hf->hdev;
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != HILBOX_IOC_MAGIC)
		return -ENOTTY;

	switch (cmd) {
	case HILBOX_IOC_INFO:
		if (READ_ONCE(hdev->dead))
			return -ENODEV;
		return hb_ioc_info(hdev, uarg);
	case HILBOX_IOC_STATS:
		return hb_ioc_stats(hdev, uarg);
	case HILBOX_IOC_CLOCK:
		return hb_ioc_clock(hdev, uarg);
	case HILBOX_IOC_FRAME_STATE:
		return hb_ioc_frame_state(hdev, uarg);
	case HILBOX_IOC_SET_EVENTS:
		return hb_ioc_set_events(hf, uarg);
	case HILBOX_IOC_COPY_FRAME:
		return hb_ioc_copy_frame(hf, uarg);
	case HILBOX_IOC_EV_RING:
		return hb_ioc_ev_ring(hf, uarg);
	case HILBOX_IOC_EV_RING_WAIT:
		return hb_ioc_ev_ring_wait(hf, uarg);
	}

	/* one of our numbers with the wrong size or direction */
	if (_IOC_NR(cmd) >= HILBOX_IOC_BASE &&
	    _IOC_NR(cmd) <= HILBOX_IOC_BASE + 7)
		return -EINVAL;
	return -ENOTTY;
}

static const struct file_operations hilbox_fops = {
	.owner = THIS_MODULE,
	.open = hilbox_open,
	.release = hilbox_release,
	.read_iter = hilbox_read_iter,
	.poll = hilbox_poll,
	.mmap = hilbox_mmap,
	.unlocked_ioctl = hilbox_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

/* ------------------------------------------------------------------ */
/* PCI                                                                 */

static int hb_read_info(struct hilbox_dev *hdev)
{
	struct pci_dev *pdev = hdev->pdev;
	struct hilbox_info *info = &hdev->info;
	u32 id, version;

	id = hb_rd(hdev, HB_REG_ID);
	version = hb_rd(hdev, HB_REG_VERSION);
	if (id != HB_ID_MAGIC ||
	    version >> HB_VERSION_MAJOR_SHIFT != HB_VERSION_MAJOR) {
		dev_err(&pdev->dev, "unsupported device: ID %#x VERSION %#x\n",
			id, version);
		return -ENODEV;
	}

	info->abi_version = HILBOX_ABI_VERSION;
	info->dev_version = version;
	info->caps = hb_rd(hdev, HB_REG_CAPS);
	info->width = hb_rd(hdev, HB_REG_WIDTH);
	info->height = hb_rd(hdev, HB_REG_HEIGHT);
	info->stride = hb_rd(hdev, HB_REG_STRIDE);
	info->format = hb_rd(hdev, HB_REG_FORMAT);
	info->fps = hb_rd(hdev, HB_REG_FPS);
	info->fb_bytes = hb_rd(hdev, HB_REG_FB_BYTES);
	info->fb_mode = hb_rd(hdev, HB_REG_FB_MODE);
	info->mmio_latency_ns = hb_rd(hdev, HB_REG_MMIO_LATENCY);
	info->ev_fifo_depth = hb_rd(hdev, HB_REG_EV_FIFO_DEPTH);
	info->ev_rate_hz = hb_rd(hdev, HB_REG_EV_RATE);
	info->ev_bundle = hb_rd(hdev, HB_REG_EV_BUNDLE);
	info->bar2_size = hdev->fb_len;
	info->ring_size = hdev->ring_cap;
	info->instance = hdev->id;
	info->event_size = sizeof(struct hilbox_event);
	info->max_read_records = HB_READ_BATCH;
	info->drv_flags = HILBOX_DRV_NOWAIT | HILBOX_DRV_EV_RING;
	if (hdev->fb_wc)
		info->drv_flags |= HILBOX_DRV_FB_WC;

	if (!info->width || !info->height ||
	    info->stride < 3ULL * info->width ||
	    (u64)info->stride * info->height != info->fb_bytes ||
	    info->fb_bytes > hdev->fb_len || !info->ev_fifo_depth) {
		dev_err(&pdev->dev, "inconsistent geometry %ux%u stride %u fb %u bar2 %llu\n",
			info->width, info->height, info->stride,
			info->fb_bytes, (u64)hdev->fb_len);
		return -ENODEV;
	}
	return 0;
}

/*
 * No events, no interrupts, nothing pending, and an empty FIFO: records a
 * previous binding (or a previous driver) left behind are discarded, so
 * the first record this binding delivers is one it enabled.  With
 * EV_ENABLE = 0 nothing enters the FIFO (SPEC section 5.1), so popping
 * until EV_COUNT = 0 empties it for good; the sequence numbers and the
 * device clock go on (no CONTROL.RESET).
 */
static void hb_quiesce(struct hilbox_dev *hdev)
{
	u32 depth = hdev->info.ev_fifo_depth, left = 2 * depth, n;
	u32 stale = 0;

	hb_wr(hdev, HB_REG_CONTROL, 0);
	hb_wr(hdev, HB_REG_INT_MASK, 0);
	while (left) {
		n = hb_rd(hdev, HB_REG_EV_COUNT);
		if (!n || n > depth)
			break;
		n = min(n, left);
		left -= n;
		stale += n;
		while (n--) {
			hb_wr(hdev, HB_REG_EV_POP, 1);	/* drops the head record */
			if (!(n % 1024))
				cond_resched();
		}
	}
	hb_wr(hdev, HB_REG_INT_ACK, HB_INT_ALL);
	if (stale)
		dev_info(&hdev->pdev->dev, "discarded %u stale event records\n", stale);
}

static int hilbox_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct hilbox_dev *hdev;
	unsigned int i;
	int ret;

	hdev = kzalloc(sizeof(*hdev), GFP_KERNEL);
	if (!hdev)
		return -ENOMEM;
	kref_init(&hdev->kref);
	init_rwsem(&hdev->hw_lock);
	spin_lock_init(&hdev->sub_lock);
	mutex_init(&hdev->ctl_lock);
	INIT_WORK(&hdev->sub_work, hb_sub_work);
	mutex_init(&hdev->drain_lock);
	INIT_DELAYED_WORK(&hdev->watchdog, hb_watchdog);
	spin_lock_init(&hdev->irq_lock);
	spin_lock_init(&hdev->ev_lock);
	INIT_LIST_HEAD(&hdev->waiters);
	for (i = 0; i < HB_POLLQ; i++)
		init_waitqueue_head(&hdev->pollq[i]);
	init_waitqueue_head(&hdev->ringq);
	atomic64_set(&hdev->ev_read, 0);
	hdev->pdev = pdev;
	hdev->ring_cap = ring_size;

	hdev->ring = kvcalloc(hdev->ring_cap, sizeof(*hdev->ring), GFP_KERNEL);
	if (!hdev->ring) {
		ret = -ENOMEM;
		goto err_free;
	}

	hdev->inode = hb_inode_new();
	if (IS_ERR(hdev->inode)) {
		ret = PTR_ERR(hdev->inode);
		goto err_ring;
	}

	ret = ida_alloc(&hilbox_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_inode;
	hdev->id = ret;
	snprintf(hdev->name, sizeof(hdev->name), "hilbox%d", hdev->id);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_ida;

	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;

	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < HB_REGS_SIZE ||
	    !(pci_resource_flags(pdev, 2) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 2) < PAGE_SIZE ||
	    !PAGE_ALIGNED(pci_resource_start(pdev, 2)) ||
	    !PAGE_ALIGNED(pci_resource_len(pdev, 2))) {
		dev_err(&pdev->dev, "unexpected BAR layout\n");
		ret = -ENODEV;
		goto err_regions;
	}

	hdev->regs = pci_iomap(pdev, 0, HB_REGS_SIZE);
	if (!hdev->regs) {
		ret = -ENOMEM;
		goto err_regions;
	}

	hdev->fb_phys = pci_resource_start(pdev, 2);
	hdev->fb_len = pci_resource_len(pdev, 2);
	hdev->fb_wc = !!(pci_resource_flags(pdev, 2) & IORESOURCE_PREFETCH);
	hdev->fb = hdev->fb_wc ? ioremap_wc(hdev->fb_phys, hdev->fb_len) :
				 ioremap(hdev->fb_phys, hdev->fb_len);
	if (!hdev->fb) {
		ret = -ENOMEM;
		goto err_unmap_regs;
	}

	ret = hb_read_info(hdev);
	if (ret)
		goto err_unmap_fb;

	hb_quiesce(hdev);

	pci_set_master(pdev);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_LEGACY);
	if (ret < 0)
		goto err_clear_master;
	if (pdev->msi_enabled)
		hdev->info.drv_flags |= HILBOX_DRV_MSI;
	hdev->irq = pci_irq_vector(pdev, 0);

	ret = request_threaded_irq(hdev->irq, hilbox_irq, hilbox_irq_thread,
				   IRQF_SHARED, hdev->name, hdev);
	if (ret)
		goto err_vectors;
	/* events only flow while CONTROL.EV_ENABLE; the mask stays on */
	hb_irq_arm(hdev, true);

	pci_set_drvdata(pdev, hdev);

	hdev->misc.minor = MISC_DYNAMIC_MINOR;
	hdev->misc.name = hdev->name;
	hdev->misc.fops = &hilbox_fops;
	hdev->misc.parent = &pdev->dev;
	hdev->misc.mode = dev_mode & 0777;
	ret = misc_register(&hdev->misc);
	if (ret)
		goto err_irq;

	dev_info(&pdev->dev,
		 "%s: %ux%u stride %u %u fps, fb %s, BAR2 %llu KiB%s, %s, ring %u\n",
		 hdev->name, hdev->info.width, hdev->info.height,
		 hdev->info.stride, hdev->info.fps,
		 hdev->info.fb_mode == HILBOX_FB_MODE_MMIO ? "mmio" : "direct",
		 (u64)hdev->fb_len >> 10, hdev->fb_wc ? " wc" : "",
		 pdev->msi_enabled ? "MSI" : "INTx", hdev->ring_cap);
	schedule_delayed_work(&hdev->watchdog,
			      msecs_to_jiffies(READ_ONCE(watchdog_ms) ?: 1000));
	return 0;

err_irq:
	hb_irq_arm(hdev, false);
	free_irq(hdev->irq, hdev);
	pci_set_drvdata(pdev, NULL);
err_vectors:
	pci_free_irq_vectors(pdev);
err_clear_master:
	pci_clear_master(pdev);
err_unmap_fb:
	iounmap(hdev->fb);
err_unmap_regs:
	pci_iounmap(pdev, hdev->regs);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_ida:
	ida_free(&hilbox_ida, hdev->id);
err_inode:
	hb_inode_put(hdev->inode);
err_ring:
	kvfree(hdev->ring);
err_free:
	kfree(hdev);
	return ret;
}

static void hilbox_remove(struct pci_dev *pdev)
{
	struct hilbox_dev *hdev = pci_get_drvdata(pdev);
	struct hilbox_waiter *w;

	/* no new opens (misc_open holds misc_mtx around our open) */
	misc_deregister(&hdev->misc);

	/* no watchdog from now on (it takes hw_lock; it stops on dead too) */
	cancel_delayed_work_sync(&hdev->watchdog);

	/* no subscription work from now on (it takes hw_lock) */
	spin_lock(&hdev->sub_lock);
	hdev->sub_closed = true;
	spin_unlock(&hdev->sub_lock);
	cancel_work_sync(&hdev->sub_work);

	/* wait for hardware users in flight, then refuse new ones */
	down_write(&hdev->hw_lock);
	hdev->dead = true;
	hb_wr(hdev, HB_REG_CONTROL, 0);
	hb_irq_arm(hdev, false);
	up_write(&hdev->hw_lock);

	/* revoke every user mapping: later accesses fault to SIGBUS */
	unmap_mapping_range(hdev->inode->i_mapping, 0, 0, 1);

	free_irq(hdev->irq, hdev);
	pci_free_irq_vectors(pdev);

	/* pending readers complete with -ENODEV, pollers see EPOLLHUP */
	spin_lock(&hdev->ev_lock);
	hdev->ev_dead = true;
	list_for_each_entry(w, &hdev->waiters, node)
		wake_up_process(w->task);
	if (hdev->evr)
		WRITE_ONCE(hdev->evr->hdr->state, HILBOX_EV_RING_DEAD);
	spin_unlock(&hdev->ev_lock);
	wake_up_interruptible(&hdev->ringq);
	hb_wake_poll_all(hdev, EPOLLIN | EPOLLRDNORM | EPOLLHUP | EPOLLERR);

	pci_clear_master(pdev);
	iounmap(hdev->fb);
	pci_iounmap(pdev, hdev->regs);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	ida_free(&hilbox_ida, hdev->id);

	dev_info(&pdev->dev, "%s removed\n", hdev->name);
	hdev->pdev = NULL;
	hb_put(hdev);
}

static const struct pci_device_id hilbox_pci_ids[] = {
	{ PCI_DEVICE(HB_PCI_VENDOR_ID, HB_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, hilbox_pci_ids);

static struct pci_driver hilbox_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = hilbox_pci_ids,
	.probe = hilbox_probe,
	.remove = hilbox_remove,
};

static int __init hilbox_init(void)
{
	if (ring_size < 16 || ring_size > (1U << 20)) {
		pr_err("ring_size %u out of range 16..1048576\n", ring_size);
		return -EINVAL;
	}
	return pci_register_driver(&hilbox_pci_driver);
}

static void __exit hilbox_exit(void)
{
	pci_unregister_driver(&hilbox_pci_driver);
	ida_destroy(&hilbox_ida);
}

module_init(hilbox_init);
module_exit(hilbox_exit);

MODULE_DESCRIPTION("hilbox-pci reference driver: read-only framebuffer mapping, frame copy, mouse events");
MODULE_AUTHOR("hilbox project");
MODULE_LICENSE("GPL");
