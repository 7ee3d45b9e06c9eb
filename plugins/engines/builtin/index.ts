import { defineEnginePlugin, type EngineContext, type FireDueOutcome } from 'sluice/sdk';

/**
 * The built-in engine keeps one timer per due instant: at it, it asks the service to fire what is due for
 * every schedule due then, in one call (the service writes each window to the ledger before dispatching it,
 * and applies catch-up, selfDepend and parallelism), then arms each schedule for its next due time. Schedules
 * due at the same instant (hourly ones on the hour) share the timer and the call, so a burst of thousands
 * costs a few statements, not thousands of calls. It holds no state worth persisting: after a restart the
 * service registers every schedule again and the ledger says where each one stands.
 */
let ctx: EngineContext | undefined;
/** The instant each armed group waits for. */
const armedAt = new Map<string, number>();
/** One timer per instant, with the groups it fires. */
const slots = new Map<number, Slot>();
interface Slot {
  readonly groups: Set<string>;
  timer?: { cancel(): void };
  /** The timer that has the service plan the slot's fire ahead (ctx.prepareDue), once it holds enough groups. */
  prepare?: { cancel(): void };
}
const registered = new Set<string>();
/** Groups whose fire is under way: a wake-up meanwhile runs once it ends. */
const running = new Set<string>();
const again = new Set<string>();

/** How long after a failed fire the group is tried again. */
const RETRY_MS = 5000;
/**
 * How long before an instant its fire is planned (ctx.prepareDue), and how many groups it must share for that:
 * the service then only checks, claims and dispatches at the instant. A handful of groups are read at once.
 */
const PREPARE_LEAD_MS = 1000;
const PREPARE_MIN_GROUPS = 32;

function unarm(groupId: string): void {
  const at = armedAt.get(groupId);
  if (at === undefined) return;
  armedAt.delete(groupId);
  const slot = slots.get(at);
  if (!slot) return;
  slot.groups.delete(groupId);
  if (slot.groups.size === 0) {
    slot.timer?.cancel();
    slot.prepare?.cancel();
    slots.delete(at);
  }
}

/** Arms the group's timer for `at`, sharing the timer of any other group due then. */
function armAt(c: EngineContext, groupId: string, at: number): void {
  unarm(groupId);
  armedAt.set(groupId, at);
  const existing = slots.get(at);
  if (existing) {
    existing.groups.add(groupId);
    if (existing.groups.size === PREPARE_MIN_GROUPS) armPrepare(c, at, existing);
    return;
  }
  const slot: Slot = { groups: new Set([groupId]) };
  // In place before the timer is asked for: a clock may run an instant already past at once, inside scheduleAt.
  slots.set(at, slot);
  slot.timer = c.scheduleAt(at, () => {
    if (slots.get(at) !== slot) return;
    slots.delete(at);
    slot.prepare?.cancel();
    for (const g of slot.groups) armedAt.delete(g);
    fire([...slot.groups]);
  });
}

/** Has the service plan the slot's fire PREPARE_LEAD_MS ahead, when there is still time for it. */
function armPrepare(c: EngineContext, at: number, slot: Slot): void {
  const prepareDue = c.prepareDue?.bind(c);
  if (!prepareDue || slot.prepare || at - PREPARE_LEAD_MS <= c.now()) return;
  slot.prepare = c.scheduleAt(at - PREPARE_LEAD_MS, () => {
    if (slots.get(at) === slot && slot.groups.size >= PREPARE_MIN_GROUPS) prepareDue([...slot.groups], at);
  });
}

/** Fires the group now (it was registered, updated or woken). */
function arm(groupId: string): void {
  if (!ctx || !registered.has(groupId)) return;
  if (running.has(groupId)) {
    again.add(groupId);
    return;
  }
  unarm(groupId);
  fire([groupId]);
}

/** Asks the service to fire what is due for the groups, then arms each for its next due time. */
function fire(groupIds: readonly string[]): void {
  const c = ctx;
  if (!c) return;
  const groups = groupIds.filter((g) => registered.has(g) && !running.has(g));
  if (groups.length === 0) return;
  for (const g of groups) running.add(g);
  const settle = (groupId: string, outcome: FireDueOutcome | undefined, err?: unknown): void => {
    running.delete(groupId);
    if (again.delete(groupId)) return arm(groupId);
    if (!registered.has(groupId) || ctx !== c) return;
    if (outcome) {
      if (outcome.nextDueTime !== undefined) armAt(c, groupId, outcome.nextDueTime);
      return;
    }
    c.logger.error('firing due windows failed; retrying in 5 s', { groupId, err });
    armAt(c, groupId, c.now() + RETRY_MS);
  };
  if (groups.length === 1 || !c.fireDueMany) {
    for (const g of groups)
      c.fireDue(g).then(
        (outcome) => settle(g, outcome),
        (err: unknown) => settle(g, undefined, err),
      );
    return;
  }
  c.fireDueMany(groups).then(
    (outcomes) => {
      for (const o of outcomes) settle(o.groupId, o.ok ? o.outcome : undefined, o.ok ? undefined : o.error);
    },
    (err: unknown) => {
      for (const g of groups) settle(g, undefined, err);
    },
  );
}

function disarm(groupId: string): void {
  registered.delete(groupId);
  unarm(groupId);
}

export default defineEnginePlugin({
  // `Quartz` is InLong's name for its built-in engine; InLong compares engine names in any case.
  accept: (engineType) => ['builtin', '', 'quartz'].includes(engineType.toLowerCase()),

  start(context) {
    ctx = context;
    context.onWake((groupId) => arm(groupId));
  },

  register(info) {
    registered.add(info.groupId);
    arm(info.groupId);
  },

  update(info) {
    registered.add(info.groupId);
    arm(info.groupId);
  },

  unregister(groupId) {
    disarm(groupId);
  },

  stop() {
    for (const groupId of [...registered]) disarm(groupId);
    ctx = undefined;
  },
});
