import { DAY_MS } from './civil.js';
import { zoneOffsets } from './zone-offsets.js';

/** A change of a zone's UTC offset: from `at` on, the offset is `after` instead of `before` (ms). */
export interface Transition {
  readonly at: number;
  readonly before: number;
  readonly after: number;
}

/** Transitions are looked for a week apart: two inside one week that cancel out are not seen. */
const STEP_MS = 7 * DAY_MS;
/** Per zone: the offset at the start of each week looked at, and the week's transition once found. */
const seen = new Map<string, { starts: Map<number, number>; found: Map<number, Transition | null> }>();

/**
 * The offset changes of a zone in [from, to), in order: spring-forward gaps (after > before) and
 * fall-back repetitions (after < before). Each week start is read from Intl once per zone and
 * remembered, so asking for decades costs one Intl look-up per week the first time only.
 */
export function transitionsBetween(zone: string, from: number, to: number): Transition[] {
  const z = zoneOffsets(zone);
  let memo = seen.get(zone);
  if (!memo) seen.set(zone, (memo = { starts: new Map(), found: new Map() }));
  const { starts, found } = memo;
  const startOffset = (step: number) => {
    let o = starts.get(step);
    if (o === undefined) starts.set(step, (o = z.probe(step * STEP_MS)));
    return o;
  };
  const out: Transition[] = [];
  for (let step = Math.floor(from / STEP_MS); step * STEP_MS < to; step++) {
    let t = found.get(step);
    if (t === undefined) {
      // Only a week whose ends differ is bisected (through the per-day offset cache).
      t =
        startOffset(step) === startOffset(step + 1)
          ? null
          : transitionIn(z.offsetAt.bind(z), step * STEP_MS, (step + 1) * STEP_MS);
      found.set(step, t);
    }
    if (t && t.at >= from && t.at < to) out.push(t);
  }
  return out;
}

/** The transition in [lo, hi) found by bisection to the second, or null when the offset holds. */
function transitionIn(offsetAt: (t: number) => number, lo: number, hi: number): Transition | null {
  const before = offsetAt(lo);
  const after = offsetAt(hi);
  if (before === after) return null;
  let a = lo;
  let b = hi;
  while (b - a > 1000) {
    const mid = a + Math.floor((b - a) / 2000) * 1000;
    if (offsetAt(mid) === before) a = mid;
    else b = mid;
  }
  return { at: b, before, after };
}
