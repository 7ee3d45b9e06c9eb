import { defineEnginePlugin, type EngineContext } from 'sluice/sdk';

/**
 * The built-in engine keeps one timer per schedule: at the next window's due time it asks the service
 * to fire what is due (the service writes each window to the ledger before dispatching it, and applies
 * catch-up, selfDepend and parallelism), then arms the timer for the next due time. It holds no state
 * worth persisting: after a restart the service registers every schedule again and the ledger says
 * where each one stands.
 */
let ctx: EngineContext | undefined;
const timers = new Map<string, { cancel(): void }>();
const registered = new Set<string>();
/** One fire at a time per group: a wake-up during a fire runs once it ends. */
const running = new Map<string, Promise<void>>();
const again = new Set<string>();

function arm(groupId: string): void {
  if (!ctx || !registered.has(groupId)) return;
  if (running.has(groupId)) {
    again.add(groupId);
    return;
  }
  timers.get(groupId)?.cancel();
  timers.delete(groupId);
  const c = ctx;
  const run = c
    .fireDue(groupId)
    .then(({ nextDueTime }) => {
      if (nextDueTime !== undefined && registered.has(groupId) && !again.has(groupId)) {
        timers.set(
          groupId,
          c.scheduleAt(nextDueTime, () => arm(groupId)),
        );
      }
    })
    .catch((err: unknown) => {
      c.logger.error('firing due windows failed; retrying in 5 s', { groupId, err });
      if (registered.has(groupId))
        timers.set(
          groupId,
          c.scheduleAt(c.now() + 5000, () => arm(groupId)),
        );
    })
    .finally(() => {
      running.delete(groupId);
      if (again.delete(groupId)) arm(groupId);
    });
  running.set(groupId, run);
}

function disarm(groupId: string): void {
  registered.delete(groupId);
  timers.get(groupId)?.cancel();
  timers.delete(groupId);
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
