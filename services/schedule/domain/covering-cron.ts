import { type CoveringCron, type CronDialect, type ScheduleInfo, invalidArgument } from 'sluice/sdk';
import { DAY_MS, monthLength } from './civil.js';
import { type Cron, nextFireTime, nextWall, parseCron } from './cron.js';
import { renderTranslated } from './cron-translate.js';
import {
  DOM_RANGE,
  HOUR_RANGE,
  MINUTE_RANGE,
  MONTH_RANGE,
  SECOND_RANGE,
  allValues,
  renderField,
  renderWeekdays,
} from './cron-render.js';
import { YEAR_MAX, YEAR_MIN } from './cron-syntax.js';
import { firingRules, normalizeInfo } from './info.js';
import { type FiringRules, dueTime } from './plan.js';
import { type WindowSpec, edge, windowAt, windowsAfter } from './windows.js';
import { fromWallMs, instantOfWall, offsetAt, toLocal, wallMs } from './zoned-time.js';
import { transitionsBetween } from './zone-transitions.js';

const RESOLUTION_MS: Readonly<Record<CronDialect, number>> = { unix: 60_000, quartz: 1000 };
/** How far ahead due times are sampled: four years hold every weekday, month length and a leap day. */
const HORIZON_MS = 1461 * DAY_MS;
/** Sampling stops after this many due times; the fields coarser than the span sampled are left open. */
const MAX_TARGETS = 5000;
/** An end at or past 10000-01-01 is no end: no last due time is given. */
const NO_END_MS = 253_402_300_800_000;

/**
 * The cron an external scheduler ticks on to drive a schedule through FireDue (see
 * EngineContext.coveringCron): every due time d that PreviewWindows lists has a tick in
 * [d, d + resolution), by the domain's own windows, due times and cron evaluator, and of the crons
 * tried the one with the fewest ticks wins.
 *
 * S, I and H schedules are fixed durations, not wall-clock times: their crons are given in UTC, where
 * daylight saving neither shifts their ticks nor repeats an hour no cron can tick twice in. Calendar
 * schedules (D W M Y O) and cron schedules keep the schedule's zone and its DST rules (a wall time in
 * a gap moves forward, a repeated one takes its first pass). A due time in the second pass of a
 * repeated hour (only reachable through a delay or a start inside it) has no wall time of its own: no
 * cron ticks there, and it fires at the next tick.
 *
 * A due time a spring-forward gap moved (Berlin's 02:30 on a gap day happens at 03:30) is covered by
 * the wall time it happens at, which the cron then holds as well as the regular one (hours 2,3):
 * neither external scheduler can be relied on to move a nonexistent wall time forward the way Sluice
 * does. Quartz's CronExpression.getTimeAfter sets the calendar's fields one by one (setCalendarHour
 * bumps a nonexistent hour to the next one and the search then sees an hour the expression does not
 * hold), so a Quartz trigger at a nonexistent time does not fire that day at all. Airflow's cron
 * timetables run croniter on the naive wall time after the current point and localise the result
 * (pendulum, fold=1: a gap time moves forward) only when that point is before the wall time: from the
 * previous tick it fires, but from a start date, an unpause or a realignment between the regular wall
 * time and the moved instant croniter walks past the nonexistent time and the window waits for the
 * next tick. A target is therefore covered only by a tick at its own, existing wall time; the cron
 * gets an extra tick on every regular day (exact: false).
 *
 * A due time in the first pass of a repeated hour (Berlin's 02:30 CEST on the last Sunday of October):
 * - Airflow (unix) localises a cron's wall time with fold=1, its second pass, except for a cron whose
 *   hour field is every hour: CronMixin._get_next (airflow-core/src/airflow/timetables/_cron.py,
 *   _covers_every_hour) then adds croniter's naive step to the current instant in UTC, which ticks
 *   both passes. The Unix cron of such a schedule is therefore its minutes at every hour of every day
 *   (`30 * * * *` for daily at 02:30 in Berlin; exact: false): a tick every hour of every day (24 a
 *   day where a daily schedule had one or two), the extra ones FireDue no-ops. Days and months stay
 *   open because the same workaround steps from the last tick of one ticking day to the first of the
 *   next in absolute time, an hour off when an offset change lies in between.
 * - Quartz (quartz) ticks no first pass at all: getTimeAfter sets calendar fields and reads them back,
 *   and java.util.GregorianCalendar reads a wall time that happens twice as standard time (its second
 *   pass), even when the search starts inside the first pass (Quartz 2.3.2: `0 0/20 * * * ?` in Berlin
 *   ticks 01:40 CEST, then 02:00 CET). No Quartz cron can say it; the due time is ticked an hour late
 *   in the second pass, FireDue fires it then, and the cron is not exact.
 *
 * Due times are sampled four years ahead (or MAX_TARGETS of them). Past the sample, the due times
 * within a few hours of each of the zone's offset changes are looked at as well, up to the end or
 * TRANSITION_HORIZON_MS (100 years) after the start: only there can a later due time fall in a gap,
 * a first pass, or be carried across a change by a delay, at a wall time the sample lacks (a 23-day
 * step from 2025 meets Berlin's spring gap first in 2039). Offset changes past that limit, or two
 * inside one week that cancel out, are not seen. A last window cut short by an end further away than
 * four years is due off the schedule's grid and gets no tick of its own (it fires through a later
 * FireDue, a TriggerWindow or a re-registration nearer the end).
 */
export function coveringCron(info: ScheduleInfo, dialect: CronDialect): CoveringCron {
  if (dialect !== 'unix' && dialect !== 'quartz') throw invalidArgument('dialect', "'unix' or 'quartz'", dialect);
  const rules = firingRules(normalizeInfo(info));
  const { spec } = rules;
  const resolutionMs = RESOLUTION_MS[dialect];
  const first = windowsAfter(spec).next();
  if (first.done) throw invalidArgument('end_time', 'a schedule with at least one window', spec.endTime);
  const firstDue = dueTime(rules, first.value);
  const lastWindow = spec.endTime < NO_END_MS ? windowAt(spec, spec.endTime - 1) : undefined;
  const lastDue = lastWindow ? dueTime(rules, lastWindow) : undefined;
  const fixed = spec.scheduleType === 0 && fixedUnit(spec);
  const period = fixed ? edge(spec, 1) - edge(spec, 0) : 0;
  const found =
    fixed && period < DAY_MS
      ? subDailyCron(firstDue, period, lastDue, dialect)
      : sampledCron(rules, fixed ? 'UTC' : spec.timeZone, lastDue, dialect);
  return {
    expression: found.expression,
    timeZone: fixed ? 'UTC' : spec.timeZone,
    exact: found.exact,
    resolutionMs,
    firstDue,
    ...(lastDue !== undefined ? { lastDue } : {}),
  };
}

interface Found {
  readonly expression: string;
  readonly exact: boolean;
}

const roundUp = (t: number, r: number) => Math.ceil(t / r) * r;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * A fixed step shorter than a day, in UTC: due times repeat their times of day every
 * DAY / gcd(step, DAY) steps, so the seconds, minutes and hours they hold are found without walking
 * the schedule, and every day field is open.
 */
function subDailyCron(firstDue: number, step: number, lastDue: number | undefined, dialect: CronDialect): Found {
  const r = RESOLUTION_MS[dialect];
  const cycle = DAY_MS / gcd(step, DAY_MS);
  const times = new Set<number>();
  for (let k = 0; k < cycle; k++) times.add(mod(roundUp(firstDue + k * step, r), DAY_MS));
  const onGrid = times.size;
  // A window cut short by the end is due off the grid (an end past the horizon is left out, as when sampling).
  if (lastDue !== undefined && lastDue - firstDue < HORIZON_MS) times.add(mod(roundUp(lastDue, r), DAY_MS));
  const seconds = new Set<number>();
  const minutes = new Set<number>();
  const hours = new Set<number>();
  for (const t of times) {
    seconds.add(Math.floor(t / 1000) % 60);
    minutes.add(Math.floor(t / 60_000) % 60);
    hours.add(Math.floor(t / 3_600_000));
  }
  const c: Candidate = {
    seconds: [...seconds],
    minutes: [...minutes],
    hours: [...hours],
    day: OPEN_DAYS,
    months: allValues(MONTH_RANGE),
  };
  const product = seconds.size * minutes.size * hours.size;
  return { expression: expressionOf(c, dialect), exact: DAY_MS % step === 0 && product === onGrid };
}

/** Which days a candidate ticks on. */
type DayRule =
  | { readonly kind: 'open' }
  | { readonly kind: 'dom'; readonly days: readonly number[] }
  | { readonly kind: 'dow'; readonly weekdays: readonly number[] }
  | { readonly kind: 'fromLast'; readonly n: number };
const OPEN_DAYS: DayRule = { kind: 'open' };

interface Candidate {
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly day: DayRule;
  readonly months: readonly number[];
  /** Quartz only; absent: every year. */
  readonly years?: readonly number[];
}

function dayFields(day: DayRule, dialect: CronDialect): [dom: string, dow: string] {
  const q = dialect === 'quartz';
  switch (day.kind) {
    case 'open':
      return ['*', q ? '?' : '*'];
    case 'dom':
      return [renderField(day.days, DOM_RANGE, dialect), q ? '?' : '*'];
    case 'dow':
      return [q ? '?' : '*', renderWeekdays(day.weekdays, dialect)];
    case 'fromLast':
      return [day.n === 0 ? 'L' : `L-${day.n}`, '?'];
  }
}

function expressionOf(c: Candidate, dialect: CronDialect, timeOfDay = true): string {
  const [dom, dow] = dayFields(c.day, dialect);
  const month = renderField(c.months, MONTH_RANGE, dialect);
  const [s, m, h] = timeOfDay
    ? [
        renderField(c.seconds, SECOND_RANGE, dialect),
        renderField(c.minutes, MINUTE_RANGE, dialect),
        renderField(c.hours, HOUR_RANGE, dialect),
      ]
    : ['0', '0', '0'];
  if (dialect === 'unix') return `${m} ${h} ${dom} ${month} ${dow}`;
  const year = c.years ? renderField(c.years, { min: YEAR_MIN, max: YEAR_MAX }, dialect) : '*';
  return `${s} ${m} ${h} ${dom} ${month} ${dow} ${year}`;
}

/** One due time, rounded up to the resolution, with its wall-clock fields in the zone. */
interface Target {
  readonly due: number;
  readonly tick: number;
  /** The tick's wall time (zone-free ordinal). */
  readonly wall: number;
  readonly second: number;
  readonly minute: number;
  readonly hour: number;
  readonly day: number;
  readonly month: number;
  readonly year: number;
  readonly weekday: number;
  readonly fromLast: number;
  readonly wallDay: number;
}

/**
 * Samples the due times (up to four years, or MAX_TARGETS, and those near later offset changes),
 * collects each field's values in the zone, and keeps the covering candidate with the fewest ticks:
 * days open, by day of month, by weekday, or counted from the month's end; a cron schedule's own
 * expression where the dialect can say it; every hour of every day for Unix when a due time is in the
 * first pass of a repeated hour.
 */
function sampledCron(rules: FiringRules, zone: string, lastDue: number | undefined, dialect: CronDialect): Found {
  const { spec } = rules;
  const r = RESOLUTION_MS[dialect];
  const dues: number[] = [];
  let complete = true;
  const horizon = spec.startTime + horizonMs(spec);
  let sampledTo = horizon;
  for (const w of windowsAfter(spec)) {
    if (w.start >= horizon || dues.length >= MAX_TARGETS) {
      complete = false;
      sampledTo = w.start;
      break;
    }
    dues.push(dueTime(rules, w));
  }
  // Past the sample, only due times near an offset change can hold a wall time the sample lacks.
  const later = complete ? [] : duesNearTransitions(rules, zone, sampledTo, dues[dues.length - 1] ?? -Infinity);
  const targets: Target[] = [];
  const beyond: Target[] = [];
  let uncoverable = 0;
  let firstPass = false;
  for (const due of [...dues, ...later]) {
    const tick = roundUp(due, r);
    const wall = wallMs(toLocal(tick, zone));
    // The second pass of a repeated hour: no wall time reaches it.
    if (instantOfWall(wall, zone) !== tick) {
      uncoverable++;
      continue;
    }
    if (repeatedLater(wall, tick, zone)) {
      firstPass = true;
      // No Quartz cron ticks in a first pass (see coveringCron): this one ticks an hour late.
      if (dialect === 'quartz') uncoverable++;
    }
    (due > dues[dues.length - 1]! ? beyond : targets).push(targetOf(due, tick, wall));
  }
  if (targets.length === 0) {
    // Only second-pass due times: tick at the first wall time after them.
    for (const due of dues) {
      const tick = roundUp(due, r);
      const after = toLocal(tick, zone);
      targets.push(targetOf(due, tick, wallMs(after)));
    }
  }
  const span = targets[targets.length - 1]!.tick - targets[0]!.tick;
  // Field values come from every due time looked at, the sampled ones and those near later offset changes.
  const all = beyond.length > 0 ? [...targets, ...beyond] : targets;
  const values = (f: (t: Target) => number) => [...new Set(all.map(f))].sort((a, b) => a - b);
  // Fields coarser than what was sampled are open: the sample says nothing about them.
  // Days a fixed number of days apart drift through every day of the month and every month (a
  // 40-day step can jump over February): only their weekday repeats.
  const drifts = spec.scheduleType === 0 && (spec.unit === 'D' || spec.unit === 'W' || fixedUnit(spec));
  const open = {
    hours: !complete && span < 2 * DAY_MS,
    days: !complete && span < 62 * DAY_MS,
    months: drifts || (!complete && span < 400 * DAY_MS),
  };
  const base = {
    seconds: dialect === 'unix' ? [0] : values((t) => t.second),
    minutes: values((t) => t.minute),
    hours: open.hours ? allValues(HOUR_RANGE) : values((t) => t.hour),
    months: open.months ? allValues(MONTH_RANGE) : values((t) => t.month),
    ...(complete && dialect === 'quartz' ? { years: values((t) => t.year) } : {}),
  };
  const dayRules: DayRule[] = [OPEN_DAYS];
  if (!open.days) {
    if (!drifts) dayRules.push({ kind: 'dom', days: values((t) => t.day) });
    dayRules.push({ kind: 'dow', weekdays: values((t) => t.weekday) });
    const fromLast = values((t) => t.fromLast);
    if (dialect === 'quartz' && fromLast.length === 1) dayRules.push({ kind: 'fromLast', n: fromLast[0]! });
  }
  const from = targets[0]!.wallDay;
  const to = targets[targets.length - 1]!.wallDay;
  let best: { c: Candidate; ticks: number } | undefined;
  for (const day of dayRules) {
    const c: Candidate = { ...base, day };
    // Counted over at least the horizon, so a short schedule still prefers the narrower day rule.
    const ticks = ticksOf(c, dialect, from, Math.max(to, from + HORIZON_MS / DAY_MS));
    if (!best || ticks < best.ticks) best = { c, ticks };
  }
  let expression = expressionOf(best!.c, dialect);
  // Airflow reaches the first pass of a repeated hour only with a cron that ticks every hour of every
  // day (see coveringCron): a due time there costs the schedule hourly ticks.
  if (firstPass && dialect === 'unix') {
    const hourly: Candidate = { ...base, hours: allValues(HOUR_RANGE), day: OPEN_DAYS, months: allValues(MONTH_RANGE) };
    const every = expressionOf(hourly, dialect);
    if (every !== expression) return { expression: every, exact: false };
  }
  // A cron schedule whose ticks are its due times: its own expression, when the dialect can say it
  // and it ticks no more often than the sampled one.
  const own = rules.delayMs === 0 && spec.cron ? renderTranslated(spec.cron, dialect) : undefined;
  // (Not when a first-pass due time needs the every-hour expression under Airflow.)
  if (own !== undefined && own !== expression && !(firstPass && dialect === 'unix')) {
    const cron = parseCron(own);
    if (covers(cron, all) && countTicks(cron, targets, zone) <= countTicks(parseCron(expression), targets, zone)) {
      expression = own;
    }
  }
  const exact =
    uncoverable === 0 && countTicks(parseCron(expression), targets, zone) === new Set(targets.map((t) => t.tick)).size;
  return { expression, exact };
}

const fixedUnit = (spec: WindowSpec) => spec.unit === 'S' || spec.unit === 'I' || spec.unit === 'H';

/**
 * How far to sample: four years, or long enough for a month or year step to come round to every
 * month it can reach (lcm(n, 12) months) and through leap years (lcm(n, 4) years), and one step more.
 */
function horizonMs(spec: WindowSpec): number {
  if (spec.scheduleType === 1) return HORIZON_MS;
  const n = spec.interval;
  const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;
  if (spec.unit === 'M') return Math.max(HORIZON_MS, (lcm(n, 12) + n) * 31 * DAY_MS);
  if (spec.unit === 'Y') return Math.max(HORIZON_MS, (lcm(n, 4) + n) * 366 * DAY_MS);
  return HORIZON_MS;
}

/** Due times are looked for this far either side of an offset change (no zone shifts by more than 2 h). */
const NEAR_TRANSITION_MS = 3 * 3_600_000;
/** Past the sample, offset changes are looked at up to this far after the start (or to the end). */
const TRANSITION_HORIZON_MS = 100 * 365.25 * DAY_MS;
/**
 * At most this many due times around one offset change: bounds the cost for a schedule due every few
 * minutes (its sample holds nearly every wall time already); past them that change is not looked at.
 */
const MAX_NEAR_TRANSITION = 200;

/**
 * The due times after `lastSampled` near each offset change of the zone from `from` up to the end
 * or TRANSITION_HORIZON_MS after the start: where a gap moves a due time to another wall time, a
 * delay carries one across the change, or one falls in the first pass of a repeated hour. Anywhere
 * else a later due time repeats a wall time the sample holds.
 */
function duesNearTransitions(rules: FiringRules, zone: string, from: number, lastSampled: number): number[] {
  const { spec } = rules;
  const out: number[] = [];
  if (zone === 'UTC') return out;
  const to = Math.min(spec.endTime, spec.startTime + TRANSITION_HORIZON_MS);
  for (const tr of transitionsBetween(zone, from, to)) {
    // A due time is the window's start or end plus the delay: it is shifted when that edge is before
    // the change and the due time after it, or moved when the edge itself is in a gap.
    const lo = tr.at - NEAR_TRANSITION_MS;
    const hi = tr.at + rules.delayMs + NEAR_TRANSITION_MS;
    let n = 0;
    for (const w of windowsAfter(spec, lo - rules.delayMs)) {
      const due = dueTime(rules, w);
      if (due > hi || ++n > MAX_NEAR_TRANSITION) break;
      if (due >= lo && due > lastSampled && (out.length === 0 || due > out[out.length - 1]!)) out.push(due);
    }
  }
  return out;
}

/** True when a wall time at `tick` happens again later (`tick` is the first pass of a repeated hour). */
function repeatedLater(wall: number, tick: number, zone: string): boolean {
  const later = offsetAt(tick + DAY_MS, zone);
  const u = wall - later;
  return u > tick && offsetAt(u, zone) === later;
}

function targetOf(due: number, tick: number, wall: number): Target {
  const l = fromWallMs(wall);
  const wallDay = Math.floor(wall / DAY_MS);
  return {
    due,
    tick,
    wall,
    second: l.second,
    minute: l.minute,
    hour: l.hour,
    day: l.day,
    month: l.month,
    year: l.year,
    weekday: (((wallDay + 4) % 7) + 7) % 7,
    fromLast: monthLength(l.year, l.month) - l.day,
    wallDay,
  };
}

/** Ticks of a candidate between two wall days: the days it ticks on times the ticks of each day. */
function ticksOf(c: Candidate, dialect: CronDialect, fromDay: number, toDay: number): number {
  const days = parseCron(expressionOf(c, dialect, false));
  let n = 0;
  const limit = toDay * DAY_MS;
  for (let w = nextWall(days, fromDay * DAY_MS, limit); w !== undefined && w <= limit;) {
    n++;
    w = nextWall(days, w + DAY_MS, limit);
  }
  return n * c.seconds.length * c.minutes.length * c.hours.length;
}

/**
 * True when the cron holds every target's own wall time: the tick in [due, due + r) at a wall time
 * that exists, which Quartz and Airflow reach whatever point they evaluate from (a nonexistent wall
 * time that Sluice's evaluator would move onto the tick does not count; see coveringCron).
 */
function covers(cron: Cron, targets: readonly Target[]): boolean {
  return targets.every((t) => nextWall(cron, t.wall, t.wall) === t.wall);
}

/** Ticks of a cron from the first target to the last (stops counting once past the targets' number twice). */
function countTicks(cron: Cron, targets: readonly Target[], zone: string): number {
  const from = targets[0]!.due - 1;
  const to = targets[targets.length - 1]!.tick;
  const cap = 2 * targets.length + 2;
  let n = 0;
  for (
    let t = nextFireTime(cron, from, zone, to);
    t !== undefined && t <= to && n < cap;
    t = nextFireTime(cron, t, zone, to)
  )
    n++;
  return n;
}
