/**
 * The time left of a ninja build from its [done/total]. ninja's steps are far from equal: the
 * first fifth (generated QAPI and trace files, small utilities) goes by in a twentieth of the
 * time, the TCG translators and the final links come last. A cold QEMU build here runs its
 * steps in the same order every time, so its progress curve — the share of the time gone when
 * a share of the steps is done — is measured once and kept below; a build of another size (an
 * incremental one, another configuration) falls back to a straight line.
 */

/**
 * [share of the steps done, share of the ninja time gone] of a cold build of this project's QEMU
 * (1250 steps; AMD EPYC, 2 cores, 2026-12-02: two cold builds, 167 s and 180 s of ninja, whose
 * curves agreed within 0.03).
 */
export const QEMU_COLD_CURVE = {
  steps: 1250,
  points: [
    [0, 0], [0.207, 0.056], [0.273, 0.117], [0.411, 0.172], [0.51, 0.228], [0.605, 0.283],
    [0.638, 0.339], [0.663, 0.4], [0.72, 0.456], [0.766, 0.511], [0.842, 0.622], [0.877, 0.678],
    [0.925, 0.733], [0.945, 0.8], [0.956, 0.856], [0.973, 0.917], [0.986, 0.978], [1, 1],
  ],
};

/** Share of the time gone at a share of the steps done, interpolated on the curve. */
export function timeShare(curve, stepShare) {
  const p = curve.points;
  for (let i = 1; i < p.length; i++) {
    if (stepShare <= p[i][0]) {
      const [x0, y0] = p[i - 1];
      const [x1, y1] = p[i];
      return y0 + ((y1 - y0) * (stepShare - x0)) / (x1 - x0);
    }
  }
  return 1;
}

/**
 * Seconds left after `elapsed` seconds at [done/total]: by the curve when the build has the
 * curve's number of steps (within a tenth), else in proportion to the steps left; undefined
 * before 2 % of the steps are done (the first line, [1/N], would say anything).
 */
export function secondsLeft(done, total, elapsed, curve = QEMU_COLD_CURVE) {
  if (done >= total) return 0;
  if (done <= 0 || total <= 0 || done / total < 0.02) return undefined;
  if (curve && Math.abs(total - curve.steps) <= curve.steps / 10) {
    const gone = timeShare(curve, done / total);
    if (gone > 0) return Math.round((elapsed * (1 - gone)) / gone);
  }
  return Math.round((elapsed / done) * (total - done));
}
