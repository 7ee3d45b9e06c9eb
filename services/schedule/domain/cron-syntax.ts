import { invalidArgument } from 'sluice/sdk';

/**
 * The cron language Sluice accepts (docs/schedules.md): Quartz's 6 or 7 fields
 * `sec min hour day-of-month month day-of-week [year]`, 5-field Unix cron `min hour day-of-month
 * month day-of-week`, and the macros @yearly @annually @monthly @weekly @daily @midnight @hourly.
 * This file turns the text into value sets and day rules; cron.ts finds fire times.
 */
export interface CronFields {
  readonly source: string;
  /** Allowed values, as sorted arrays. */
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly months: readonly number[];
  /** Absent: every year. */
  readonly years?: readonly number[];
  /** Absent: the field does not restrict (`*` or `?`). */
  readonly dom?: DomRule;
  readonly dow?: DowRule;
  /** Both day fields restricted in 5-field cron: a day matches either (Vixie/POSIX). */
  readonly domOrDow: boolean;
}

export interface DomRule {
  /** Days 1-31. */
  readonly days: readonly number[];
  /** n of `L-n` (`L` is 0): the day n days before the month's last. */
  readonly fromLast: readonly number[];
  /** `nW`: the weekday nearest day n, within the month. */
  readonly nearestWeekday: readonly number[];
  /** `L-nW` / `LW`: the weekday nearest the day n before the last. */
  readonly nearestWeekdayFromLast: readonly number[];
}

export interface DowRule {
  /** Weekdays, 0 = Sunday. */
  readonly weekdays: readonly number[];
  /** `d#k`: the k-th weekday d of the month. */
  readonly nth: readonly { readonly weekday: number; readonly nth: number }[];
  /** `dL`: the last weekday d of the month. */
  readonly last: readonly number[];
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

export const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export const YEAR_MIN = 1970;
export const YEAR_MAX = 2199;

interface FieldDef {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Largest step Quartz allows in the field. */
  readonly maxStep: number;
  readonly names?: readonly string[];
  /** Value of names[0]. */
  readonly nameBase?: number;
  /** Ranges may run over the end (22-2, NOV-FEB, FRI-MON). */
  readonly wraps: boolean;
}

const SECOND: FieldDef = { name: 'seconds', min: 0, max: 59, maxStep: 59, wraps: true };
const MINUTE: FieldDef = { name: 'minutes', min: 0, max: 59, maxStep: 59, wraps: true };
const HOUR: FieldDef = { name: 'hours', min: 0, max: 23, maxStep: 23, wraps: true };
const DOM: FieldDef = { name: 'day-of-month', min: 1, max: 31, maxStep: 31, wraps: true };
const MONTH: FieldDef = { name: 'month', min: 1, max: 12, maxStep: 12, names: MONTHS, nameBase: 1, wraps: true };
const YEAR: FieldDef = { name: 'year', min: YEAR_MIN, max: YEAR_MAX, maxStep: YEAR_MAX - YEAR_MIN, wraps: false };
const DOW_QUARTZ: FieldDef = { name: 'day-of-week', min: 1, max: 7, maxStep: 7, names: DAYS, nameBase: 1, wraps: true };
// Unix weekdays are 0-7 (0 and 7 both Sunday); ranges wrap over 0-6, so MON-SUN is Monday to Sunday.
const DOW_UNIX: FieldDef = { name: 'day-of-week', min: 0, max: 7, maxStep: 7, names: DAYS, nameBase: 0, wraps: true };

function fail(field: string, expected: string, got: string): never {
  throw invalidArgument('crontab_expression', `${expected} in the ${field} field`, got);
}

function describeRange(def: FieldDef): string {
  const names = def.names ? ` or a name (${def.names[0]}-${def.names[def.names.length - 1]})` : '';
  return `a number from ${def.min} to ${def.max}${names}`;
}

function value(def: FieldDef, text: string, item: string): number {
  if (def.names) {
    const i = def.names.indexOf(text);
    if (i >= 0) return i + def.nameBase!;
  }
  if (!/^\d+$/.test(text)) fail(def.name, describeRange(def), item);
  const n = Number(text);
  if (n < def.min || n > def.max) fail(def.name, describeRange(def), item);
  return n;
}

/** One item of a list: `*`, `/n`, `*\/n`, `a`, `a/n`, `a-b`, `a-b/n`; values appended to `out`. */
function expandItem(def: FieldDef, item: string, out: Set<number>): void {
  const slash = item.indexOf('/');
  const range = slash < 0 ? item : item.slice(0, slash);
  let step = 1;
  if (slash >= 0) {
    const stepText = item.slice(slash + 1);
    step = Number(stepText);
    if (!/^\d+$/.test(stepText) || step < 1 || step > def.maxStep)
      fail(def.name, `a step from 1 to ${def.maxStep} after '/'`, item);
  }
  let lo: number;
  let hi: number;
  if (range === '*' || range === '') {
    lo = def.min;
    hi = def.max;
  } else {
    const dash = range.indexOf('-', 1);
    if (dash > 0) {
      lo = value(def, range.slice(0, dash), item);
      hi = value(def, range.slice(dash + 1), item);
      if (lo > hi && !def.wraps) fail(def.name, 'a range low-high (years do not wrap around)', item);
    } else {
      lo = value(def, range, item);
      hi = slash < 0 ? lo : def.max;
    }
  }
  if (lo <= hi) {
    for (let v = lo; v <= hi; v += step) out.add(v);
    return;
  }
  // Over the end: lo..max, then on from min (Quartz: 22-2 is 22, 23, 0, 1, 2).
  const cycle = def === DOW_UNIX ? 7 : def.max - def.min + 1;
  for (let v = lo; v <= hi + cycle; v += step) out.add(v >= def.min + cycle ? v - cycle : v);
}

function parseNumbers(def: FieldDef, text: string): number[] {
  if (text === '?') fail(def.name, "'?' is allowed only in day-of-month and day-of-week, so a value", text);
  const out = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') fail(def.name, 'a value between commas', text);
    expandItem(def, item, out);
  }
  return [...out].sort((a, b) => a - b);
}

function parseDom(text: string): DomRule {
  const days = new Set<number>();
  const fromLast: number[] = [];
  const nearestWeekday: number[] = [];
  const nearestWeekdayFromLast: number[] = [];
  for (const item of text.split(',')) {
    if (item === '') fail(DOM.name, 'a value between commas', text);
    const last = /^L(?:-(\d+))?(W?)$/.exec(item);
    if (last) {
      const n = last[1] === undefined ? 0 : Number(last[1]);
      if (n > 30) fail(DOM.name, "an offset from 0 to 30 after 'L-'", item);
      (last[2] ? nearestWeekdayFromLast : fromLast).push(n);
      continue;
    }
    const weekday = /^(\d+)W$/.exec(item);
    if (weekday) {
      const n = Number(weekday[1]);
      if (n < 1 || n > 31) fail(DOM.name, "a day from 1 to 31 before 'W'", item);
      nearestWeekday.push(n);
      continue;
    }
    if (item.includes('W'))
      fail(DOM.name, "'W' after a single day (15W) or after L (LW, L-2W), not in a range or step", item);
    if (item.includes('L'))
      fail(DOM.name, "'L' alone, as L-n (n from 0 to 30) or with W (LW, L-nW), not in a range or step", item);
    expandItem(DOM, item, days);
  }
  return { days: [...days].sort((a, b) => a - b), fromLast, nearestWeekday, nearestWeekdayFromLast };
}

function parseDow(text: string, quartz: boolean): DowRule {
  const def = quartz ? DOW_QUARTZ : DOW_UNIX;
  // Quartz numbers weekdays 1-7 from Sunday; Unix cron 0-7 with 0 and 7 both Sunday.
  const toSunday0 = (n: number) => (quartz ? n - 1 : n % 7);
  const weekdays = new Set<number>();
  const nth: { weekday: number; nth: number }[] = [];
  const last: number[] = [];
  const items = text.split(',');
  // Quartz refuses 'L' and '#' in a list (which L or which nth would be meant is unclear): so does Sluice.
  if (items.length > 1 && /[L#]/.test(text)) fail(def.name, "'L' or '#' alone, not in a list", text);
  for (const item of items) {
    if (item === '') fail(def.name, 'a value between commas', text);
    if (item === 'L') {
      // Quartz: 'L' alone in day-of-week is 7, Saturday.
      if (!quartz) fail(def.name, "a weekday before 'L' (5L: the last Friday)", item);
      weekdays.add(6);
      continue;
    }
    const hash = /^(\w+)#(\d+)$/.exec(item);
    if (hash) {
      const k = Number(hash[2]);
      if (k < 1 || k > 5) fail(def.name, "a number from 1 to 5 after '#'", item);
      nth.push({ weekday: toSunday0(value(def, hash[1]!, item)), nth: k });
      continue;
    }
    const lastOf = /^(\w+)L$/.exec(item);
    if (lastOf) {
      last.push(toSunday0(value(def, lastOf[1]!, item)));
      continue;
    }
    if (item.includes('#') || item.includes('L'))
      fail(def.name, "a single weekday before '#k' or 'L' (6#3, 6L), not a range or step", item);
    const set = new Set<number>();
    expandItem(def, item, set);
    for (const v of set) weekdays.add(toSunday0(v));
  }
  return { weekdays: [...weekdays].sort((a, b) => a - b), nth, last };
}

const unrestricted = (text: string) => text === '*' || text === '?';

/** Parses and checks a cron expression; INVALID_ARGUMENT naming crontab_expression otherwise. */
export function parseCronFields(source: string): CronFields {
  const trimmed = source.trim();
  let text = trimmed;
  if (trimmed.startsWith('@')) {
    const macro = MACROS[trimmed.toLowerCase()];
    if (macro === undefined)
      throw invalidArgument('crontab_expression', `one of the macros ${Object.keys(MACROS).join(' ')}`, source);
    text = macro;
  }
  const fields = text.toUpperCase().split(/\s+/);
  const quartz = fields.length === 6 || fields.length === 7;
  if (!quartz && fields.length !== 5) {
    throw invalidArgument(
      'crontab_expression',
      'a Quartz cron of 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), a 5-field cron (min hour day-of-month month day-of-week) or a macro such as @daily',
      source,
    );
  }
  const [sec, min, hour, dom, month, dow, year] = (quartz ? fields : ['0', ...fields]) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  const domFree = unrestricted(dom);
  const dowFree = unrestricted(dow);
  if (quartz && !domFree && !dowFree)
    fail('day-of-month/day-of-week', "'?' in one of them (Quartz does not combine both)", `${dom} ${dow}`);
  if (quartz && !dowFree && dom !== '?')
    fail(
      'day-of-month',
      "'?' when day-of-week is restricted (Quartz: weekdays 1-7 from Sunday, unlike Unix and Spring's 0-7)",
      `${dom} ${dow}`,
    );
  return {
    source,
    seconds: parseNumbers(SECOND, sec),
    minutes: parseNumbers(MINUTE, min),
    hours: parseNumbers(HOUR, hour),
    months: parseNumbers(MONTH, month),
    ...(year !== undefined && year !== '*' ? { years: parseNumbers(YEAR, year) } : {}),
    ...(domFree ? {} : { dom: parseDom(dom) }),
    ...(dowFree ? {} : { dow: parseDow(dow, quartz) }),
    domOrDow: !quartz && !domFree && !dowFree,
  };
}
