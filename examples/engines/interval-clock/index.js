// An engine is a clock: it says *when*, Sluice decides *which windows* (ctx.fireDue). This one ticks every
// `tickMs` and, on each tick, asks Sluice to fire what is due for every schedule it runs. It imports
// nothing: everything it needs comes in the hooks' context (see docs/plugins.md, "The engine context").

/** The groups this engine runs. */
const groups = new Set();
let ctx;
let timer;

function tickMs(context) {
  return context.settings.tickMs ?? 60000;
}

async function tick() {
  const c = ctx;
  if (!c) return;
  const asOf = c.now();
  for (const groupId of [...groups]) {
    try {
      // Idempotent: a window already fired (by this tick, a retry or another replica) is not fired again.
      await c.fireDue(groupId, asOf);
    } catch (err) {
      c.logger.warn('interval-clock: fireDue failed; the next tick tries again', { groupId, err });
    }
  }
  if (ctx === c) timer = c.scheduleAt(asOf + tickMs(c), () => void tick());
}

export default {
  kind: 'engine',

  // Case-insensitive and cheap: called for every schedule registered.
  accept: (engineType) => engineType.toLowerCase() === 'interval-clock',

  // At most one tick late.
  resolutionMs: (context) => tickMs(context),

  async start(context) {
    ctx = context;
    // Reconcile: hold exactly the live schedules the store says this engine runs.
    groups.clear();
    for (const info of await context.listSchedules()) groups.add(info.groupId);
    timer = context.scheduleAt(context.now() + tickMs(context), () => void tick());
  },

  register(info) {
    groups.add(info.groupId);
  },

  // The windows are Sluice's to compute, so a changed schedule needs nothing here.
  update(info) {
    groups.add(info.groupId);
  },

  unregister(groupId) {
    groups.delete(groupId);
  },

  stop() {
    timer?.cancel();
    timer = undefined;
    ctx = undefined;
    groups.clear();
  },
};
