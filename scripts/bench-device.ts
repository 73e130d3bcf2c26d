/**
 * `npm run bench:device` — what hilbox-pci's frames cost the host, measured on this machine in
 * one run, with no guest OS:
 *
 *  - render host CPU per frame of a 1920×1080 rgb24 device at 50 and 200 fps: CPU time of
 *    QEMU's own threads over a window of real time divided by the frames rendered in it (QOM
 *    `frames-produced`). Per-thread CPU time is read from /proc/<pid>/task/<tid>/schedstat
 *    (field 1: nanoseconds on a CPU, the scheduler's exact sum_exec_runtime; /proc/…/stat
 *    utime+stime in 10 ms ticks where schedstat is missing). The render is the `hilbox-render`
 *    thread's time (threads are named with `-name …,debug-threads=on`); a QEMU whose device
 *    renders on the main loop has no such thread, and its render is the main thread's time
 *    less the main thread's idle rate (the fps=1 run);
 *  - beside it, memset and memcpy of one frame of the same size, measured in the same run by a
 *    tiny C helper compiled on the fly (cc -O2) exactly the way the render is measured: a
 *    pacing thread sleeps to each frame's deadline at the same fps (as QEMU's frame timer on
 *    the main loop) and hands the frame to a worker thread under a mutex with a condition
 *    variable (as the device hands it to its render thread); the worker does one call per
 *    frame into prefaulted anonymous memory advised for transparent huge pages — what QEMU
 *    gives BAR2's RAM — so the buffer is as cold at each call as the framebuffer is at each
 *    render; the figure is the worker's CPU time over the whole run (schedstat, the same clock
 *    as the render thread's) divided by its calls, so it includes one wake-up a frame, as the
 *    render thread's does. The per-call median of CLOCK_THREAD_CPUTIME_ID around memset
 *    alone, which this bench used to divide by, is printed beside it: it leaves out the
 *    wake-up and the slow calls that a mean over the window keeps, so it made the render look
 *    up to ~20 % dearer than it is. (Not node's Buffer.fill: it would measure V8's heap and JS
 *    call overhead.) How much of a
 *    frame is still in the L3 cache at the next call depends on the frame rate, so memset is
 *    cheaper at 200 fps than at 50, and a render's fixed per-frame instruction cost weighs
 *    more there (qemu-device/hilbox-pci.c, above hilbox_render_frame);
 *  - the main loop's CPU per second while rendering and idle (fps 1), and the difference per
 *    frame: what the main loop spends on a frame (its timer wake-up and handing the frame to
 *    the render thread), so, averaged over the frames, a bound on any one stretch of it;
 *  - QMP round trips (`query-status`, one after another with a 2 ms pause) while the device
 *    renders at 50 and 200 fps, against the device idle (fps=1): p50 / p99 / max, and p99
 *    less the idle p99 of the same repeat (what rendering adds to the main loop's answer time;
 *    the round trip itself, node and the socket, is in both). A render that ran on the main
 *    loop would delay every QMP command that arrives during it.
 *
 * Accelerator: `-accel tcg` with a tiny idle guest (a 64 KiB BIOS that executes `cli; hlt`):
 * the vCPU halts and costs nothing, and without icount QEMU's virtual clock follows host time,
 * so the frame timer fires at `fps` in real time and every frame is rendered the way it is in
 * a real run (once per frame period, into memory that cooled meanwhile). Under `-accel qtest`
 * the virtual clock moves only when stepped, so frames would be rendered in bursts from a hot
 * cache, or not at all.
 *
 * `--repeat N` (default 3) runs everything N times and prints each run and, for every figure,
 * the median and min–max. This machine is shared (2 cores, other engineers' VMs), so single
 * figures are noisy; ratios are taken within one repeat, whose measurements are back to back.
 *
 * Options: --qemu PATH (default: the project build), --seconds S (window per measurement,
 * default 5), --repeat N, --width W --height H (default 1920×1080).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureQemu } from '../orchestrator/src/products/ensure.ts';
import { QtestSession } from '../orchestrator/src/qtest/client.ts';
import { DEV_QOM, deviceArg } from '../orchestrator/src/qtest/rig.ts';

const { values: opt } = parseArgs({
  options: {
    qemu: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '3' },
    width: { type: 'string', default: '1920' },
    height: { type: 'string', default: '1080' },
  },
});
const SECONDS = Number(opt.seconds);
const REPEAT = Number(opt.repeat);
const WIDTH = Number(opt.width);
const HEIGHT = Number(opt.height);
const FRAME_BYTES = WIDTH * 3 * HEIGHT;
const RENDER_FPS = [50, 200] as const;
const IDLE_FPS = 1;
if (!(SECONDS > 0 && Number.isInteger(REPEAT) && REPEAT > 0 && WIDTH > 0 && HEIGHT > 0)) {
  console.error('usage: npm run bench:device -- [--qemu PATH] [--seconds S] [--repeat N] [--width W --height H]');
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint): number => Number(now() - t0) / 1e6;

// ---- per-thread CPU time ----------------------------------------------------------------------

let cpuSource = 'schedstat';

/** CPU time of every thread of `pid`, ms, by thread: main (tid = pid), render, vcpu, other. */
function threadCpu(pid: number): { main: number; render: number | undefined; other: number } {
  let main = 0;
  let render: number | undefined;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const base = `/proc/${pid}/task/${tid}`;
    let t: number;
    try {
      t = Number(readFileSync(`${base}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    } catch {
      cpuSource = 'stat (10 ms ticks)';
      const st = readFileSync(`${base}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      t = (Number(f[11]) + Number(f[12])) * 10;
    }
    const comm = readFileSync(`${base}/comm`, 'utf8').trim();
    if (Number(tid) === pid) main += t;
    else if (comm === 'hilbox-render') render = (render ?? 0) + t;
    else other += t;
  }
  return { main, render, other };
}

// ---- QEMU with one device and an idle vCPU ------------------------------------------------------

function idleBios(dir: string): string {
  const rom = Buffer.alloc(64 * 1024, 0);
  Buffer.from([0xfa, 0xf4, 0xeb, 0xfd]).copy(rom, 0); // cli; hlt; jmp $-1
  Buffer.from([0xea, 0x00, 0x00, 0x00, 0xf0]).copy(rom, 0xfff0); // reset vector: jmp f000:0000
  const path = join(dir, 'idle.rom');
  writeFileSync(path, rom);
  return path;
}

interface DeviceRun {
  fps: number;
  frames: number;
  seconds: number;
  /** ms of CPU per rendered frame: the render thread, or the main loop less its idle rate. */
  renderMs: number;
  renderFrom: 'render thread' | 'main loop less idle';
  /** main thread's CPU per second of the window, ms/s */
  mainMsPerS: number;
  rtt: { p50: number; p99: number; max: number; n: number };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runDevice(qemu: string, bios: string, fps: number, idleMainMsPerS: number | undefined): Promise<DeviceRun> {
  await using qt = await QtestSession.start({
    qemu,
    accel: 'tcg',
    args: ['-bios', bios, '-m', '32', '-name', 'hilbox-bench,debug-threads=on', '-device', deviceArg({ width: WIDTH, height: HEIGHT, fps, 'mouse-rate-hz': 0 })],
    timeoutMs: 30_000,
  });
  const qmp = qt.qmp!;
  const pid = qt.pid!;
  const produced = async (): Promise<number> => Number(await qmp.qomGet<number>(DEV_QOM, 'frames-produced'));
  await sleep(1000); // start-up, the redraw after reset, a few frames

  // CPU window: nothing but the device runs (two qom-gets at its ends)
  const f0 = await produced();
  const c0 = threadCpu(pid);
  const t0 = now();
  await sleep(SECONDS * 1000);
  const c1 = threadCpu(pid);
  const seconds = msSince(t0) / 1000;
  const f1 = await produced();
  const frames = f1 - f0;
  const mainMs = c1.main - c0.main;
  const mainMsPerS = mainMs / seconds;
  let renderMs: number;
  let renderFrom: DeviceRun['renderFrom'];
  if (c1.render !== undefined && c0.render !== undefined) {
    renderMs = (c1.render - c0.render) / Math.max(1, frames);
    renderFrom = 'render thread';
  } else {
    renderMs = (mainMs - (idleMainMsPerS ?? 0) * seconds) / Math.max(1, frames);
    renderFrom = 'main loop less idle';
  }

  // QMP window: round trips one after another
  const rtts: number[] = [];
  const end = now() + BigInt(Math.round(Math.min(SECONDS, 5) * 1e9));
  while (now() < end) {
    const q0 = now();
    await qmp.execute('query-status');
    rtts.push(msSince(q0));
    await sleep(2);
  }
  rtts.sort((a, b) => a - b);
  return { fps, frames, seconds, renderMs, renderFrom, mainMsPerS, rtt: { p50: pct(rtts, 50), p99: pct(rtts, 99), max: rtts.at(-1)!, n: rtts.length } };
}

// ---- memset / memcpy helper ---------------------------------------------------------------------

const HELPER_C = String.raw`
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* memory like QEMU's RAM for BAR2: anonymous, 2 MiB aligned, advised for THP, prefaulted */
static uint8_t *buffer(size_t n)
{
    size_t al = 2u << 20, len = (n + al - 1) / al * al;
    uint8_t *p = mmap(NULL, len + al, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    p = (uint8_t *)(((uintptr_t)p + al - 1) & ~(uintptr_t)(al - 1));
    madvise(p, len, MADV_HUGEPAGE);
    memset(p, 1, n);
    return p;
}

static double thread_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* this thread's sum_exec_runtime, ms: the clock the bench reads for QEMU's render thread */
static double sched_ms(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long ns;
    int ok = f && fscanf(f, "%llu", &ns) == 1;

    if (f) fclose(f);
    return ok ? ns / 1e6 : thread_ms();
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/*
 * As in hilbox-pci: a pacing thread (QEMU's main loop and its frame timer) hands each frame
 * to a worker (the render thread) under a mutex and wakes it with a condition variable; the
 * worker sleeps on it between frames. The worker's CPU time is what is measured.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int pending, stop, kind, iters;
static size_t bytes;
static uint8_t *dst, *src;
static double *ms, paced;

static void *worker(void *arg)
{
    double w0 = sched_ms();
    int i = 0;

    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        double t0;
        while (!pending && !stop) pthread_cond_wait(&cond, &lock);
        if (!pending) break;
        pending = 0;
        pthread_mutex_unlock(&lock);
        t0 = thread_ms();
        if (kind == 0) {
            memset(dst, i, bytes);
        } else {
            memcpy(dst, src, bytes);
        }
        ms[i] = thread_ms() - t0;
        __asm__ volatile("" : : "r"(dst) : "memory");  /* the writes are not dead */
        i++;
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    paced = (sched_ms() - w0) / i;      /* the worker's whole time, as the render thread's */
    iters = i;
    return NULL;
}

int main(int argc, char **argv)
{
    long fps = strtol(argv[2], NULL, 0);
    int n = atoi(argv[3]), i;
    double sum;

    bytes = strtoull(argv[1], NULL, 0);
    dst = buffer(bytes);
    src = buffer(bytes);
    ms = calloc(n, sizeof(double));
    for (kind = 0; kind < 2; kind++) {
        struct timespec next;
        pthread_t t;

        stop = 0;
        pthread_create(&t, NULL, worker, NULL);
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (i = 0; i < n; i++) {
            next.tv_nsec += 1000000000L / fps;
            while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
            pthread_mutex_lock(&lock);
            pending = 1;                /* a frame still waiting is replaced, as in the device */
            pthread_cond_signal(&cond);
            pthread_mutex_unlock(&lock);
        }
        pthread_mutex_lock(&lock);
        stop = 1;
        pthread_cond_signal(&cond);
        pthread_mutex_unlock(&lock);
        pthread_join(t, NULL);
        for (i = 0, sum = 0; i < iters; i++) sum += ms[i];
        qsort(ms, iters, sizeof(double), cmp);
        printf("{\"kind\":\"%s\",\"calls\":%d,\"paced\":%.6f,\"median\":%.6f,\"mean\":%.6f,\"min\":%.6f}\n",
               kind ? "memcpy" : "memset", iters, paced, ms[iters / 2], sum / iters, ms[0]);
    }
    return 0;
}
`;

function buildHelper(dir: string): string {
  const src = join(dir, 'membench.c');
  const bin = join(dir, 'membench');
  writeFileSync(src, HELPER_C);
  execFileSync('cc', ['-O2', '-pthread', '-o', bin, src], { stdio: ['ignore', 'ignore', 'inherit'] });
  return bin;
}

interface MemRun {
  /** ms of thread CPU per call over the paced loop: measured as the render is */
  memset: number;
  memcpy: number;
  /** median ms of one call alone (CLOCK_THREAD_CPUTIME_ID around it), for reference */
  memsetCall: number;
  memcpyCall: number;
}

function runHelper(bin: string, fps: number): MemRun {
  const iters = Math.max(50, Math.min(1000, Math.round(SECONDS * fps)));
  const out = execFileSync(bin, [String(FRAME_BYTES), String(fps), String(iters)], { encoding: 'utf8' });
  const r: Record<string, { paced: number; median: number }> = {};
  for (const line of out.trim().split('\n')) {
    const j = JSON.parse(line) as { kind: string; paced: number; median: number };
    r[j.kind] = j;
  }
  return { memset: r['memset']!.paced, memcpy: r['memcpy']!.paced, memsetCall: r['memset']!.median, memcpyCall: r['memcpy']!.median };
}

// ---- report ---------------------------------------------------------------------------------------

const f3 = (v: number): string => v.toFixed(3);
const f1 = (v: number): string => v.toFixed(1);
/**
 * Main-loop CPU a frame costs, µs: the main thread's CPU per second over its idle rate (fps 1),
 * per frame. Everything the main loop does for a frame (the timer's wake-up, handing the frame
 * to the render thread) is in it, so, averaged over the frames, no one stretch of it is longer.
 */
const mainUsPerFrame = (d: DeviceRun, idle: DeviceRun): number => ((d.mainMsPerS - idle.mainMsPerS) * 1000) / d.fps;
const f2 = (v: number): string => v.toFixed(2);
function spread(vals: number[], fmt: (v: number) => string): string {
  const s = [...vals].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return s.length > 1 ? `${fmt(med)} (${fmt(s[0]!)}–${fmt(s.at(-1)!)})` : fmt(med);
}

interface Repeat {
  idle: DeviceRun;
  render: Record<number, DeviceRun>;
  mem: Record<number, MemRun>;
}

async function main(): Promise<void> {
  const qemu = opt.qemu ?? (await ensureQemu({ onProgress: (l) => process.stderr.write(`${l}\n`) }));
  if (!existsSync(qemu)) throw new Error(`no QEMU at ${qemu}`);
  const dir = mkdtempSync(join(tmpdir(), 'hb-bench-device-'));
  try {
    const bios = idleBios(dir);
    const helper = buildHelper(dir);
    console.log(`bench:device — hilbox-pci frame cost, ${WIDTH}×${HEIGHT} rgb24 (${FRAME_BYTES} bytes a frame)`);
    console.log(`QEMU ${qemu}`);
    console.log(`host ${cpus()[0]?.model ?? '?'} × ${cpus().length}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (shared machine: figures are noisy)`);
    console.log(`-accel tcg, idle guest (cli; hlt); window ${SECONDS} s per measurement; ${REPEAT} repeat(s)`);
    const repeats: Repeat[] = [];
    for (let r = 1; r <= REPEAT; r++) {
      const idle = await runDevice(qemu, bios, IDLE_FPS, undefined);
      const render: Record<number, DeviceRun> = {};
      const mem: Record<number, MemRun> = {};
      for (const fps of RENDER_FPS) {
        render[fps] = await runDevice(qemu, bios, fps, idle.mainMsPerS);
        mem[fps] = runHelper(helper, fps);
      }
      repeats.push({ idle, render, mem });
      console.log(`\nrepeat ${r}/${REPEAT}  (CPU time from /proc/<pid>/task/*/${cpuSource === 'schedstat' ? 'schedstat' : cpuSource})`);
      for (const fps of RENDER_FPS) {
        const d = render[fps]!;
        const m = mem[fps]!;
        console.log(
          `  fps ${String(fps).padStart(3)}: ${d.frames} frames in ${d.seconds.toFixed(1)} s; render ${f3(d.renderMs)} ms/frame (${d.renderFrom}); ` +
            `memset ${f3(m.memset)}, memcpy ${f3(m.memcpy)} ms/frame (one call alone: median ${f3(m.memsetCall)}, ${f3(m.memcpyCall)}); ` +
            `render/memset ${f2(d.renderMs / m.memset)}, render/memcpy ${f2(d.renderMs / m.memcpy)}; ` +
            `main loop ${f2(d.mainMsPerS)} ms/s (idle ${f2(idle.mainMsPerS)}): ${f1(mainUsPerFrame(d, idle))} µs a frame over idle`,
        );
      }
      const rtt = (d: DeviceRun): string => `p50 ${f3(d.rtt.p50)} p99 ${f3(d.rtt.p99)} max ${f3(d.rtt.max)} (n ${d.rtt.n})`;
      console.log(`  QMP query-status round trip, ms: idle (fps ${IDLE_FPS}) ${rtt(idle)}`);
      for (const fps of RENDER_FPS) {
        const d = render[fps]!;
        console.log(`                                    fps ${String(fps).padStart(3)}   ${rtt(d)}; p99 − idle p99 ${f3(d.rtt.p99 - idle.rtt.p99)}`);
      }
    }
    console.log(`\nsummary over ${REPEAT} repeat(s): median (min–max)`);
    for (const fps of RENDER_FPS) {
      const col = (f: (x: Repeat) => number, fmt = f3): string => spread(repeats.map(f), fmt);
      console.log(`  fps ${String(fps).padStart(3)}: render ${col((x) => x.render[fps]!.renderMs)} ms/frame, memset ${col((x) => x.mem[fps]!.memset)}, memcpy ${col((x) => x.mem[fps]!.memcpy)} ms/frame`);
      console.log(`           render/memset ${col((x) => x.render[fps]!.renderMs / x.mem[fps]!.memset, f2)}, render/memcpy ${col((x) => x.render[fps]!.renderMs / x.mem[fps]!.memcpy, f2)}`);
      console.log(`           main loop ${col((x) => x.render[fps]!.mainMsPerS, f2)} ms/s of CPU (idle ${col((x) => x.idle.mainMsPerS, f2)}): ${col((x) => mainUsPerFrame(x.render[fps]!, x.idle), f1)} µs a frame over idle`);
      console.log(`           QMP p50 ${col((x) => x.render[fps]!.rtt.p50)} p99 ${col((x) => x.render[fps]!.rtt.p99)} max ${col((x) => x.render[fps]!.rtt.max)} ms; p99 − idle p99 ${col((x) => x.render[fps]!.rtt.p99 - x.idle.rtt.p99)} ms`);
    }
    const col = (f: (x: Repeat) => number): string => spread(repeats.map(f), f3);
    console.log(`  idle (fps ${IDLE_FPS}): QMP p50 ${col((x) => x.idle.rtt.p50)} p99 ${col((x) => x.idle.rtt.p99)} max ${col((x) => x.idle.rtt.max)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
