/**
 * The scenario file format (YAML) as a zod schema. One job: say what a valid scenario is.
 *
 * Every object is strict: an unknown key is an error that lists the allowed keys. Every numeric
 * range is stated once, in the message the user sees ("… allowed 1..1000"). Device ranges come
 * from the device contract (orchestrator/src/device/spec.ts, SPEC §9), not from here.
 */
import { z } from 'zod';
import { crossPropertyProblems, DEFAULT_PROPS, MOUSE_RATE_MIN, PROP_LIMITS } from '../device/spec.ts';

// ---------------------------------------------------------------------------------------------
// Building blocks that carry their own user-facing messages

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** A strict object whose unknown-key error names the allowed keys. */
function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const keys = iss.keys;
        return `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}; allowed keys: ${allowed}`;
      }
      if (iss.code === 'invalid_type') return `expected a mapping with keys ${allowed}, got ${describe(iss.input)}`;
      return undefined;
    },
  });
}

/** An integer in [min, max]. */
export function intIn(min: number, max: number) {
  const range = `allowed ${min}..${max}`;
  const out = (iss: { input?: unknown }) => `${describe(iss.input)} is out of range; ${range}`;
  return z
    .number({ error: (iss) => `expected an integer (${range}), got ${describe(iss.input)}` })
    .int({ error: (iss) => `${describe(iss.input)} is not an integer; ${range}` })
    .min(min, { error: out })
    .max(max, { error: out });
}

/** A positive number (may be fractional) up to `max`. */
function positive(max: number) {
  const range = `allowed > 0 and ≤ ${max}`;
  return z
    .number({ error: (iss) => `expected a number (${range}), got ${describe(iss.input)}` })
    .positive({ error: (iss) => `${describe(iss.input)} is out of range; ${range}` })
    .max(max, { error: (iss) => `${describe(iss.input)} is out of range; ${range}` });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) => `${describe(iss.input)} is not allowed; allowed: ${values.join(', ')}`,
  });
}

function bool() {
  return z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` });
}

function text(what: string) {
  return z
    .string({ error: (iss) => `expected ${what} (a string), got ${describe(iss.input)}` })
    .min(1, { error: `expected ${what}, got an empty string` });
}

function listOf<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: (iss) => `expected a list of ${what}, got ${describe(iss.input)}` });
}

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const SNAKE = /^[a-z][a-z0-9_]*$/;

/** A case name (kebab-case, as the probes print them). */
const caseName = z
  .string({ error: (iss) => `expected a case name, got ${describe(iss.input)}` })
  .regex(KEBAB, { error: (iss) => `${describe(iss.input)} is not a case name; allowed: kebab-case like "fb-copy-direct"` });

/** `"all"` or a non-empty list of case names. */
const caseSelection = z.union([z.literal('all'), z.array(caseName).min(1)], {
  error: (iss) => `${describe(iss.input)} is not allowed; allowed: "all" or a non-empty list of case names`,
});

/** QEMU -m value: a number with an optional K/M/G/T suffix. */
export const MEMORY_PATTERN = /^[1-9][0-9]*[KMGT]?$/;

// ---------------------------------------------------------------------------------------------
// Sections

const lim = PROP_LIMITS;

/** hilbox-pci properties (SPEC §9) plus `feed` (attach the host feed chardev). Keys as in SPEC. */
export const DeviceSchema = strict({
  width: intIn(lim.width.min, lim.width.max).default(DEFAULT_PROPS.width),
  height: intIn(lim.height.min, lim.height.max).default(DEFAULT_PROPS.height),
  stride: intIn(lim.stride.min, lim.stride.max).default(DEFAULT_PROPS.stride),
  fps: intIn(lim.fps.min, lim.fps.max).default(DEFAULT_PROPS.fps),
  'fb-mode': oneOf(['direct', 'mmio']).default(DEFAULT_PROPS['fb-mode']),
  'mmio-latency-ns': intIn(lim['mmio-latency-ns'].min, lim['mmio-latency-ns'].max).default(DEFAULT_PROPS['mmio-latency-ns']),
  'fifo-depth': intIn(lim['fifo-depth'].min, lim['fifo-depth'].max).default(DEFAULT_PROPS['fifo-depth']),
  'mouse-rate-hz': intIn(lim['mouse-rate-hz'].min, lim['mouse-rate-hz'].max).default(DEFAULT_PROPS['mouse-rate-hz']),
  'mouse-bundle': intIn(lim['mouse-bundle'].min, lim['mouse-bundle'].max).default(DEFAULT_PROPS['mouse-bundle']),
  input: bool().default(DEFAULT_PROPS.input),
  msi: bool().default(DEFAULT_PROPS.msi),
  feed: bool().default(false),
}).superRefine((d, ctx) => {
  for (const p of crossPropertyProblems(d)) ctx.addIssue({ code: 'custom', path: [p.property], message: p.message });
});

const SshSchema = strict({
  user: text('a user name'),
  keyPath: text('a private key path').optional(),
  password: text('a password').optional(),
  port: intIn(1, 65535).optional(),
}).superRefine((s, ctx) => {
  if ((s.keyPath === undefined) === (s.password === undefined)) {
    ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of keyPath or password' });
  }
});

export const GuestSchema = strict({
  os: oneOf(['linux', 'windows']).default('linux'),
  /** Windows: the qcow2 disk image to boot (hilbox never modifies it: it runs on an overlay). */
  image: text('a qcow2 image path').optional(),
  /** Windows: UEFI firmware code file (OVMF); omit for SeaBIOS. */
  firmware: text('a firmware file path').optional(),
  ssh: SshSchema.optional(),
}).superRefine((g, ctx) => {
  if (g.os === 'windows') {
    if (g.image === undefined) ctx.addIssue({ code: 'custom', path: ['image'], message: 'is required with os: windows (a qcow2 image path)' });
    if (g.ssh === undefined) ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'is required with os: windows ({user, keyPath | password})' });
  } else {
    for (const k of ['image', 'firmware', 'ssh'] as const) {
      if (g[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `is only allowed with os: windows (hilbox builds the Linux guest itself)` });
    }
  }
});

export const DriverSchema = strict({
  /** A driver binary to upload instead of the built-in one (.ko for Linux, .sys for Windows). */
  path: text('a driver file path').optional(),
  /** Linux module parameters given to insmod (name → integer), e.g. INTERFACE.md's test-only knobs. */
  params: z
    .record(
      z.string().regex(/^[a-z_][a-z0-9_]*$/, { error: (iss) => `${describe(iss.input)} is not a module parameter name; allowed: lower-case letters, digits, _` }),
      intIn(0, 1_000_000),
      {
        error: (iss) =>
          iss.code === 'invalid_key'
            ? `${describe(iss.input)} is not a module parameter name; allowed: lower-case letters, digits, _`
            : `expected a mapping parameter → integer, got ${describe(iss.input)}`,
      },
    )
    .optional(),
});

export const MouseMatrixSchema = strict({
  rates: listOf(intIn(MOUSE_RATE_MIN, lim['mouse-rate-hz'].max), 'rates in Hz').min(1).default([125, 1000, 8000]),
  bundles: listOf(intIn(lim['mouse-bundle'].min, lim['mouse-bundle'].max), 'bundle sizes').min(1).default([1, 4]),
  pending: listOf(intIn(1, 1024), 'pending-request counts').min(1).default([1, 4, 16, 64]),
});

/** The CPU table's pictures: geometry and frame rate of a device the table consumes. */
export const CpuPictureSchema = strict({
  width: intIn(lim.width.min, lim.width.max),
  height: intIn(lim.height.min, lim.height.max),
  fps: intIn(lim.fps.min, lim.fps.max),
});
/** The CPU table's BARs: how BAR2 is read (direct memory, or every read trapping with a latency). */
export const CpuBarSchema = strict({
  'fb-mode': oneOf(['direct', 'mmio']),
  'mmio-latency-ns': intIn(lim['mmio-latency-ns'].min, lim['mmio-latency-ns'].max).default(0),
}).superRefine((b, ctx) => {
  if (b['mmio-latency-ns'] !== 0 && b['fb-mode'] !== 'mmio') ctx.addIssue({ code: 'custom', path: ['mmio-latency-ns'], message: `${b['mmio-latency-ns']} is only allowed with fb-mode: mmio; allowed here: 0` });
});
export const CPU_METHODS = ['map', 'copy', 'bytewise', 'qword'] as const;
export const CPU_DEFAULTS = {
  enabled: false,
  bench: true,
  seconds: 2,
  pictures: [
    { width: 1920, height: 1080, fps: 50 },
    { width: 640, height: 480, fps: 5 },
  ],
  bars: [
    { 'fb-mode': 'direct' as const, 'mmio-latency-ns': 0 },
    { 'fb-mode': 'mmio' as const, 'mmio-latency-ns': 0 },
    { 'fb-mode': 'mmio' as const, 'mmio-latency-ns': 200 },
    { 'fb-mode': 'mmio' as const, 'mmio-latency-ns': 500 },
  ],
  methods: [...CPU_METHODS],
};

export const SuitesSchema = strict({
  verify: strict({
    enabled: bool().default(true),
    frames: intIn(1, 10000).default(10),
  }).default({ enabled: true, frames: 10 }),
  throughput: strict({
    enabled: bool().default(true),
    seconds: positive(3600).default(5),
    fbModes: listOf(oneOf(['direct', 'mmio']), 'fb modes').min(1).default(['direct', 'mmio']),
    mouse: MouseMatrixSchema.default({ rates: [125, 1000, 8000], bundles: [1, 4], pending: [1, 4, 16, 64] }),
    short: bool().default(false),
    /** Of the cases the lists above make (after `short`), these only ("all": every one). */
    cases: caseSelection.default('all'),
  }).default({
    enabled: true,
    seconds: 5,
    fbModes: ['direct', 'mmio'],
    mouse: { rates: [125, 1000, 8000], bundles: [1, 4], pending: [1, 4, 16, 64] },
    short: false,
    cases: 'all',
  }),
  security: strict({
    enabled: bool().default(true),
    cases: caseSelection.default('all'),
  }).default({ enabled: true, cases: 'all' }),
  /**
   * The CPU table (guest-driver/INTERFACE.md §6 fb-consume): every picture × BAR × method,
   * consumed at the device's frame rate with and without the seqlock. `enabled`: `hilbox run`
   * runs it; `bench`: `hilbox bench` runs it.
   */
  cpu: strict({
    enabled: bool().default(CPU_DEFAULTS.enabled),
    bench: bool().default(CPU_DEFAULTS.bench),
    seconds: positive(600).default(CPU_DEFAULTS.seconds),
    pictures: listOf(CpuPictureSchema, 'pictures {width, height, fps}').min(1).default(CPU_DEFAULTS.pictures),
    bars: listOf(CpuBarSchema, 'BARs {fb-mode, mmio-latency-ns}').min(1).default(CPU_DEFAULTS.bars),
    methods: listOf(oneOf(CPU_METHODS), 'methods').min(1).default([...CPU_METHODS]),
  }).default(CPU_DEFAULTS),
  robustness: strict({
    enabled: bool().default(true),
    cases: caseSelection.default('all'),
    /** The full stress counts (load/unload ×100, unplug ×20, open/close ×10k) instead of the short ones. */
    full: bool().default(false),
  }).default({ enabled: true, cases: 'all', full: false }),
});

const bound = z.number({ error: (iss) => `expected a number, got ${describe(iss.input)}` });
export const ThresholdSchema = strict({ min: bound.optional(), max: bound.optional() }).superRefine((t, ctx) => {
  if (t.min === undefined && t.max === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'give min, max or both' });
  if (t.min !== undefined && t.max !== undefined && t.min > t.max) ctx.addIssue({ code: 'custom', path: [], message: `min ${t.min} is greater than max ${t.max}` });
});

/**
 * Threshold keys: a metric name (`events_lost`: every case reporting it) or
 * `<case-name>.<metric>` (one case).
 */
export const THRESHOLD_KEY = /^(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)?[a-z][a-z0-9_]*$/;

export const ThresholdsSchema = z
  .record(
    z.string().regex(THRESHOLD_KEY, {
      error: (iss) => `${describe(iss.input)} is not a metric name; allowed: snake_case metric, optionally prefixed "case-name."`,
    }),
    ThresholdSchema,
    { error: (iss) => `expected a mapping metric → {min, max}, got ${describe(iss.input)}` },
  )
  .default({});

export const TimeoutsSchema = strict({
  bootSeconds: intIn(1, 3600).optional(),
  caseSeconds: intIn(1, 3600).optional(),
});

export const ScenarioSchema = strict({
  name: z
    .string({ error: (iss) => `expected a scenario name, got ${describe(iss.input)}` })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: (iss) => `${describe(iss.input)} is not allowed; allowed: letters, digits, . _ - (used in file names)` }),
  description: z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` }).optional(),
  guest: GuestSchema.default({ os: 'linux' }),
  accelerator: oneOf(['auto', 'tcg', 'kvm']).default('auto'),
  memory: z
    .string({ error: (iss) => `expected a size like "512M", got ${describe(iss.input)}` })
    .regex(MEMORY_PATTERN, { error: (iss) => `${describe(iss.input)} is not a size; allowed: a number with optional K/M/G/T suffix, e.g. "512M"` })
    .default('512M'),
  cpus: intIn(1, 8).default(2),
  /**
   * Deterministic guest time (TCG only): `-icount shift=N,sleep=off,align=off`, the guest clock
   * follows instructions executed (2^N ns each); needs cpus: 1. Omitted: real time. `hilbox bench --deterministic` sets 0 (and cpus 1).
   */
  icount: intIn(0, 10).optional(),
  /**
   * Every QEMU thread under SCHED_FIFO priority 1 (needs root or CAP_SYS_NICE; refused: a
   * warning, and the run's boot case says so): event latencies without host time slices.
   */
  realtime: bool().default(false),
  /**
   * A Linux guest resumes the boot snapshot of its configuration (QEMU, kernel, initrd and every
   * machine and device setting) instead of booting, storing one after its first boot; false: every
   * boot is cold. Deterministic (icount) runs always boot cold.
   */
  bootSnapshot: bool().default(true),
  device: DeviceSchema.default({ ...DEFAULT_PROPS, feed: false }),
  driver: DriverSchema.default({}),
  suites: SuitesSchema.default({
    verify: { enabled: true, frames: 10 },
    throughput: {
      enabled: true,
      seconds: 5,
      fbModes: ['direct', 'mmio'],
      mouse: { rates: [125, 1000, 8000], bundles: [1, 4], pending: [1, 4, 16, 64] },
      short: false,
      cases: 'all',
    },
    security: { enabled: true, cases: 'all' },
    cpu: CPU_DEFAULTS,
    robustness: { enabled: true, cases: 'all', full: false },
  }),
  thresholds: ThresholdsSchema,
  timeouts: TimeoutsSchema.default({}),
}).superRefine((s, ctx) => {
  if (s.icount !== undefined && s.accelerator === 'kvm') ctx.addIssue({ code: 'custom', path: ['icount'], message: 'icount needs the tcg accelerator; allowed with accelerator: tcg or auto (auto then means tcg)' });
  // QEMU 7.2 under icount with sleep=off: the guest kernel hangs bringing up a second vCPU.
  if (s.icount !== undefined && s.cpus !== 1) ctx.addIssue({ code: 'custom', path: ['cpus'], message: `${s.cpus} with icount; allowed with icount: 1 (the guest kernel does not bring up a second vCPU under icount)` });
  if (s.driver.params && s.guest.os !== 'linux') ctx.addIssue({ code: 'custom', path: ['driver', 'params'], message: `module parameters are for a Linux guest; not allowed for os: ${s.guest.os}` });
  const p = s.driver.path;
  if (p !== undefined) {
    const want = s.guest.os === 'windows' ? '.sys' : '.ko';
    if (!p.endsWith(want)) ctx.addIssue({ code: 'custom', path: ['driver', 'path'], message: `${JSON.stringify(p)} is not a ${want} file; allowed for os: ${s.guest.os}: a ${want} file` });
  }
});

/** A validated scenario, defaults filled in. */
export type Scenario = z.infer<typeof ScenarioSchema>;
/** The scenario as written (defaults optional). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
export type DeviceConfig = z.infer<typeof DeviceSchema>;
export type GuestConfig = z.infer<typeof GuestSchema>;
export type SuitesConfig = z.infer<typeof SuitesSchema>;
export type ThroughputConfig = SuitesConfig['throughput'];
export type SecurityConfig = SuitesConfig['security'];
export type CpuConfig = SuitesConfig['cpu'];
export type VerifyConfig = SuitesConfig['verify'];
export type Threshold = z.infer<typeof ThresholdSchema>;
export type Thresholds = z.infer<typeof ThresholdsSchema>;
export type Timeouts = z.infer<typeof TimeoutsSchema>;
export type CaseSelection = z.infer<typeof caseSelection>;
export type Accelerator = Scenario['accelerator'];

export { KEBAB as CASE_NAME_PATTERN, SNAKE as METRIC_NAME_PATTERN };
