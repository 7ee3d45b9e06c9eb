import anyTest, { type TestFn } from 'ava';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import type { InstanceRecord, InstanceUpdate, ScheduleStore } from '../../services/schedule/domain/model.js';
import { HOUR, T0, info } from '../helpers/schedule.js';
import { replica, storeBackends } from '../helpers/store-rig.js';

const test = anyTest as TestFn<unknown>;
const backends = await storeBackends(test, 'sluice-fire-due');
const sqlite = backends[0]!;

const codeOf = (err: unknown) => (err as { code?: string }).code;
const fieldOf = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

for (const backend of backends) {
  backend.declare(
    `${backend.name}: FireDue from two replicas at once and after a restart fires each window once`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 5 * HOUR + 30_000);
      const a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('twice', { scheduleEngine: 'None' }));

      const [ra, rb] = await Promise.all([
        a.service.fireDueChecked('twice', 0),
        b.service.fireDueChecked('twice', T0 + 5 * HOUR),
      ]);
      await Promise.all([a.service.idle(), b.service.idle()]);
      const fired = [...a.dispatcher.submitted, ...b.dispatcher.submitted].map(
        (s) => (Number(s.lowerBound) - T0) / HOUR,
      );
      t.deepEqual(
        fired.sort((x, y) => x - y),
        [0, 1, 2, 3, 4],
        'each of the five windows due at 05:00 is dispatched by exactly one replica',
      );
      // Both callers answer with the windows they claimed or found claimed, so an engine sees its tick's result.
      t.true(ra.instances.length > 0 && rb.instances.length > 0);
      t.is(ra.nextDueTime ?? rb.nextDueTime, T0 + 6 * HOUR);

      // An engine's retry of the same tick fires nothing and finds the latest window it fired.
      const retry = await a.service.fireDueChecked('twice', T0 + 5 * HOUR);
      t.deepEqual(
        retry.instances.map((i) => i.windowStart),
        [T0 + 4 * HOUR],
      );

      // A restart: a new replica on the same database fires nothing twice, then fires the next window when due.
      await a.service.stop();
      const c = await replica(open, clock, 'a');
      t.teardown(() => c.service.stop());
      await c.service.fireDueChecked('twice', 0);
      await c.service.idle();
      t.is(c.dispatcher.submitted.length, 0);
      await clock.advanceTo(T0 + 6 * HOUR);
      const next = await c.service.fireDueChecked('twice', 0);
      await c.service.idle();
      t.deepEqual(
        c.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
        [5],
      );
      t.is(next.instances[0]?.windowStart, T0 + 5 * HOUR);
      const rows = await c.service.listInstances({ groupId: 'twice', limit: 100 });
      t.is(rows.length, 6, 'one ledger row per window');
    },
  );

  backend.declare(
    `${backend.name}: a window run ahead of the schedule by hand does not move it past the windows before`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 10 * HOUR + 30_000);
      const a = await replica(open, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('ahead', { scheduleEngine: 'None' }));
      const fired = () => a.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR);

      // The schedule has fired windows 0-2; then windows 7 and 9 are run by hand (TriggerWindow).
      await a.service.fireDueChecked('ahead', T0 + 3 * HOUR);
      await a.service.trigger('ahead', T0 + 7 * HOUR, false);
      await a.service.trigger('ahead', T0 + 9 * HOUR, false);
      await a.service.idle();
      t.deepEqual(fired(), [0, 1, 2, 7, 9]);

      // The schedule goes on from window 3: every window due fires once, 7 and 9 are not run again.
      const res = await a.service.fireDueChecked('ahead', 0);
      await a.service.idle();
      t.deepEqual(
        fired().sort((x, y) => x - y),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      t.deepEqual(
        res.instances.map((i) => (i.windowStart - T0) / HOUR),
        [3, 4, 5, 6, 8],
      );
      t.is(res.nextDueTime, T0 + 11 * HOUR);

      // Once caught up, the next window fires when due, and a retry of the tick fires nothing.
      await clock.advanceTo(T0 + 11 * HOUR);
      await a.service.fireDueChecked('ahead', 0);
      await a.service.fireDueChecked('ahead', 0);
      await a.service.idle();
      t.deepEqual(fired().slice(-1), [10]);
      t.is(fired().length, 11);
      // A window of the schedule re-run by hand (its row's trigger is MANUAL now) is not fired again either.
      await a.service.trigger('ahead', T0 + 10 * HOUR, true);
      await a.service.idle();
      await a.service.fireDueChecked('ahead', 0);
      await a.service.idle();
      t.is(fired().length, 12, 'the re-run only');
      const rows = await a.service.listInstances({ groupId: 'ahead', limit: 100 });
      t.is(rows.length, 11, 'one ledger row per window');
    },
  );

  backend.declare(
    `${backend.name}: windows due at one instant are each claimed DISPATCHED, together, before their dispatch; a refused one ends FAILED`,
    async (t) => {
      const open = await backend.setup(t);
      // Every ledger write, by the instance it touches, in order.
      const writes = new Map<string, string[]>();
      let claimWrites = 0;
      const note = (id: string, what: string) => writes.set(id, [...(writes.get(id) ?? []), what]);
      const counted = async (): Promise<ScheduleStore> => {
        const store = await open();
        return Object.assign(Object.create(store) as ScheduleStore, {
          claimInstances: async (rows: readonly InstanceRecord[]) => {
            claimWrites++;
            for (const r of rows) note(r.instanceId, `claim ${r.state}`);
            return store.claimInstances(rows);
          },
          claimInstance: async (row: InstanceRecord) => {
            claimWrites++;
            note(row.instanceId, `claim ${row.state}`);
            return store.claimInstance(row);
          },
          updateInstance: async (...args: Parameters<ScheduleStore['updateInstance']>) => {
            note(args[0], `update ${args[1].state ?? '-'}`);
            return store.updateInstance(...args);
          },
          updateInstances: async (updates: readonly InstanceUpdate[]) => {
            for (const u of updates) note(u.instanceId, `update ${u.patch.state ?? '-'}`);
            return store.updateInstances(updates);
          },
        });
      };
      const reader = await open();
      const clock = new ManualClock(T0 + HOUR + 1000);
      const r = await replica(counted, clock, 'a');
      t.teardown(() => r.service.stop());
      const groups = Array.from({ length: 24 }, (_, i) => `burst-${String(i).padStart(2, '0')}`);
      for (const g of groups) await r.service.register(info(g, { scheduleEngine: 'None', endTime: T0 + HOUR }));

      // What the ledger holds when the operator is asked, and which writes came before.
      const atSubmit = new Map<string, { state?: string; dispatchedAt?: number; writes: string[] }>();
      const submit = r.dispatcher.submit.bind(r.dispatcher);
      r.dispatcher.submit = async (request) => {
        const row = await reader.getInstanceById(request.instanceId);
        atSubmit.set(request.groupId, {
          ...(row ? { state: row.state, dispatchedAt: row.dispatchedAt } : {}),
          writes: [...(writes.get(request.instanceId) ?? [])],
        });
        return submit(request);
      };
      r.dispatcher.failSubmit = (n) => (n === 5 ? new Error('operator refused the window') : undefined);

      claimWrites = 0;
      const fired = await Promise.all(groups.map((g) => r.service.fireDue(g, 0)));
      await r.service.idle();
      t.true(
        fired.every((f) => f.instances.length === 1),
        'each group fired its one due window',
      );
      t.is(atSubmit.size, groups.length);
      for (const [g, seen] of atSubmit) {
        t.is(seen.state, 'DISPATCHED', `${g}: dispatched in the ledger before the operator is asked`);
        t.is(seen.dispatchedAt, T0 + HOUR + 1000);
        t.deepEqual(seen.writes, ['claim DISPATCHED'], `${g}: one write before its dispatch`);
      }
      t.true(claimWrites < groups.length, `${claimWrites} claim writes for ${groups.length} windows`);

      const rows = await reader.listInstances({ limit: 100 });
      const failed = rows.filter((i) => i.state === 'FAILED');
      t.is(failed.length, 1, 'the refused dispatch ends its row FAILED');
      t.is(failed[0]!.error, 'operator refused the window');
      t.deepEqual(failed[0]!.jobIds, []);
      const succeeded = rows.filter((i) => i.state === 'SUCCEEDED');
      t.is(succeeded.length, groups.length - 1);
      for (const i of succeeded) {
        t.is(i.jobIds.length, 1, 'the job ids are written with the later states');
        t.deepEqual(writes.get(i.instanceId), ['claim DISPATCHED', 'update RUNNING', 'update SUCCEEDED']);
        t.is(i.dispatchedAt, T0 + HOUR + 1000);
      }
    },
  );
}

for (const backend of backends) {
  backend.declare(
    `${backend.name}: fireDueMany fires many groups in one claim, answers each as FireDue would, and isolates a failed claim`,
    async (t) => {
      const open = await backend.setup(t);
      let claimWrites = 0;
      const counted = async (): Promise<ScheduleStore> => {
        const store = await open();
        return Object.assign(Object.create(store) as ScheduleStore, {
          claimInstances: async (rows: readonly InstanceRecord[]) => {
            claimWrites++;
            if (rows.some((r) => r.groupId === 'poison')) throw new Error('claim refused by the store');
            return store.claimInstances(rows);
          },
          schedulesWithLast: async (queries: readonly { groupId: string; dueBy?: number }[]) => {
            if (queries.some((q) => q.groupId === 'unreadable')) throw new Error('read failed');
            return store.schedulesWithLast(queries);
          },
        });
      };
      const clock = new ManualClock(T0 + HOUR + 1000);
      const r = await replica(counted, clock, 'a');
      t.teardown(() => r.service.stop());
      const groups = Array.from({ length: 20 }, (_, i) => `many-${String(i).padStart(2, '0')}`);
      for (const g of groups) await r.service.register(info(g, { scheduleEngine: 'None', endTime: T0 + HOUR }));

      const ahead = await t.throwsAsync(r.service.fireDueMany(groups, clock.now() + 60_000));
      t.is(codeOf(ahead), 'INVALID_ARGUMENT');
      t.is(claimWrites, 0, 'a refused as_of fires nothing');

      const answers = await r.service.fireDueMany([...groups, 'unknown', groups[0]!], 0);
      await r.service.idle();
      t.is(claimWrites, 1, 'the windows of all 20 groups are claimed in one statement');
      t.is(answers.length, groups.length + 2, 'one answer per group asked for, in order');
      for (const [i, g] of groups.entries()) {
        const a = answers[i]!;
        if (a instanceof Error) return t.fail(`${g}: ${a.message}`);
        t.deepEqual(
          a.instances.map((x) => [x.groupId, x.windowStart]),
          [[g, T0]],
        );
        t.is(a.nextDueTime, undefined, `${g} has ended`);
      }
      t.deepEqual(answers[groups.length], { instances: [] }, 'an unknown group fires nothing');
      t.is(answers[groups.length + 1], answers[0], 'a group asked for twice is fired once and answered twice');
      t.deepEqual(r.dispatcher.submitted.map((x) => x.groupId).sort(), groups, 'each window dispatched once');

      // Again at the same instant: nothing new, and each group finds the window it fired, as FireDue does.
      const again = await r.service.fireDueMany(groups, 0);
      await r.service.idle();
      t.is(r.dispatcher.submitted.length, groups.length);
      t.deepEqual(
        again.map((a) => (a instanceof Error ? a.message : a.instances.map((x) => x.state))),
        groups.map(() => ['SUCCEEDED']),
      );

      // A claim the store refuses fails its group only: the others of its statement are claimed again alone.
      const others = ['late-a', 'late-b', 'late-c'];
      for (const g of [...others, 'poison'])
        await r.service.register(info(g, { scheduleEngine: 'None', endTime: T0 + HOUR }));
      const mixed = await r.service.fireDueMany([...others, 'poison'], 0);
      await r.service.idle();
      t.true(mixed[3] instanceof Error && /claim refused/.test(mixed[3].message), 'the poisoned group fails');
      for (const [i, g] of others.entries()) {
        const a = mixed[i]!;
        t.false(a instanceof Error, `${g} fired`);
        if (!(a instanceof Error)) t.is(a.instances[0]?.groupId, g);
      }
      // Reads that fail answer an error for each group read with them; the call itself does not reject.
      const unread = await r.service.fireDueMany(['unreadable', 'late-a'], 0);
      t.true(unread.every((a) => a instanceof Error && a.message === 'read failed'));

      const rows = await r.service.listInstances({ limit: 100 });
      t.is(rows.filter((x) => x.groupId === 'poison').length, 0, 'nothing of the failed group is in the ledger');
      t.is(rows.length, groups.length + others.length, 'one row per fired window');
      t.true(
        rows.every((x) => x.state === 'SUCCEEDED' && x.jobIds.length === 1),
        'every fired window ran to its end once',
      );
      t.is(r.dispatcher.submitted.length, groups.length + others.length);
    },
  );
}

test.serial(
  'FireDue evaluates the rules at as_of, refuses an as_of in the future, and knows no unknown group',
  async (t) => {
    const open = await sqlite.setup(t);
    const clock = new ManualClock(T0 + 10 * HOUR);
    const r = await replica(open, clock, 'a');
    t.teardown(() => r.service.stop());
    await r.service.register(info('asof', { scheduleEngine: 'none', catchUp: { mode: 'ALL', windowMs: 0 } }));

    // As of 03:00, only the windows closed by then fire, though the service's clock says 10:00.
    const early = await r.service.fireDueChecked('asof', T0 + 3 * HOUR);
    await r.service.idle();
    t.deepEqual(
      early.instances.map((i) => (i.windowStart - T0) / HOUR),
      [0, 1, 2],
    );
    t.is(early.nextDueTime, T0 + 4 * HOUR);

    const ahead = await t.throwsAsync(r.service.fireDueChecked('asof', clock.now() + 60_000));
    t.is(codeOf(ahead), 'INVALID_ARGUMENT');
    t.is(fieldOf(ahead), 'as_of');
    t.regex(ahead.message, /at most 5000 ms after/);
    // A few seconds of engine clock drift are tolerated.
    await t.notThrowsAsync(r.service.fireDueChecked('asof', clock.now() + 4000));

    const negative = await t.throwsAsync(r.service.fireDueChecked('asof', -5));
    t.is(fieldOf(negative), 'as_of');
    const unknown = await t.throwsAsync(r.service.fireDueChecked('nobody', 0));
    t.is(codeOf(unknown), 'NOT_FOUND');
  },
);

test.serial(
  'a group with engine None fires nothing by itself; interval 0 with unit O and lower-case units are accepted',
  async (t) => {
    const open = await sqlite.setup(t);
    const clock = new ManualClock(T0 + 10 * HOUR);
    const r = await replica(open, clock, 'a');
    t.teardown(() => r.service.stop());
    const s = await r.service.register(info('manual-none', { scheduleEngine: 'NONE', scheduleUnit: 'h' }));
    t.is(s.engineId, 'none');
    t.is(s.info.scheduleUnit, 'H');
    await clock.advanceTo(T0 + 20 * HOUR);
    await r.service.idle();
    t.is(r.dispatcher.submitted.length, 0, 'no engine: nothing fires until asked');

    const once = await r.service.register(
      info('one-round', { scheduleEngine: 'None', scheduleUnit: 'o', scheduleInterval: 0, endTime: T0 + 2 * HOUR }),
    );
    t.is(once.info.scheduleUnit, 'O');
    const fired = await r.service.fireDueChecked('one-round', 0);
    t.deepEqual(
      fired.instances.map((i) => [i.windowStart, i.windowEnd]),
      [[T0, T0 + 2 * HOUR]],
    );
    await r.service.idle();
    // Unregistering a group without an engine touches no plugin.
    await t.notThrowsAsync(r.service.unregister('manual-none'));
  },
);

for (const backend of backends) {
  backend.declare(
    `${backend.name}: fires planned ahead (prepareDue) fire as without the plan; a plan gone out of date is made again`,
    async (t) => {
      const open = await backend.setup(t);
      let heads = 0;
      let reads = 0;
      const counted = async (): Promise<ScheduleStore> => {
        const store = await open();
        return Object.assign(Object.create(store) as ScheduleStore, {
          firingHeads: (groupIds: readonly string[], dueBy: number) => {
            heads++;
            return store.firingHeads(groupIds, dueBy);
          },
          schedulesWithLast: (queries: readonly { groupId: string; dueBy?: number }[]) => {
            reads++;
            read.push(...queries.map((q) => q.groupId));
            return store.schedulesWithLast(queries);
          },
        });
      };
      const read: string[] = [];
      const at = T0 + 3 * HOUR; // window 2's due time
      const clock = new ManualClock(at - 1500);
      const a = await replica(counted, clock, 'a');
      const b = await replica(open, clock, 'b'); // another replica, sharing the store
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      const groups = ['same', 'paused', 'updated', 'taken', 'ahead'];
      for (const g of groups) await a.service.register(info(g, { scheduleEngine: 'None' }));
      await a.service.fireDueMany(groups, 0); // windows 0 and 1, missed
      await a.service.idle();
      a.dispatcher.submitted.length = 0;

      a.service.prepareDue(groups, at);
      await a.service.idle();
      // Meanwhile, on replica b: a pause, an update (due a minute later), window 2 run by hand, window 5 run ahead.
      await b.service.pause('paused');
      await b.service.update(info('updated', { scheduleEngine: 'None', delayTime: 1, version: 2 }));
      await b.service.trigger('taken', T0 + 2 * HOUR, false);
      await b.service.trigger('ahead', T0 + 5 * HOUR, false);
      await b.service.idle();

      await clock.advanceTo(at);
      [heads, reads, read.length] = [0, 0, 0];
      const answers = await a.service.fireDueMany(groups, 0);
      await a.service.idle();
      const fired = (d: typeof a.dispatcher) =>
        d.submitted.map((s) => `${s.groupId}@${(Number(s.lowerBound) - T0) / HOUR}`).sort();
      t.deepEqual(fired(a.dispatcher), ['ahead@2', 'same@2'], 'what is still due, once');
      t.deepEqual(fired(b.dispatcher), ['ahead@5', 'taken@2']);
      t.is(heads, 1, 'one check for the five groups');
      t.is(reads, 1, 'one read, for the three whose plan went out of date');
      t.deepEqual(read.sort(), ['paused', 'taken', 'updated']);
      const byGroup = new Map(groups.map((g, i) => [g, answers[i]!]));
      for (const [g, a0] of byGroup) t.false(a0 instanceof Error, g);
      const answer = (g: string) => byGroup.get(g) as { instances: InstanceRecord[]; nextDueTime?: number };
      t.like(answer('same'), { nextDueTime: T0 + 4 * HOUR });
      t.deepEqual(
        answer('same').instances.map((i) => [i.windowStart, i.trigger]),
        [[T0 + 2 * HOUR, 'SCHEDULE']],
      );
      t.deepEqual(answer('paused'), { instances: [] });
      t.is(answer('updated').nextDueTime, at + 60_000, 'due a minute later now');
      t.deepEqual(
        answer('taken').instances.map((i) => [i.windowStart, i.trigger]),
        [[T0 + 2 * HOUR, 'MANUAL']],
        "window 2 is b's run",
      );

      // Not planned: an instant past, or more than a minute ahead. Planned but fired too late: read again.
      a.dispatcher.submitted.length = 0;
      a.service.prepareDue(['same'], at);
      a.service.prepareDue(['same'], clock.now() + 61_000);
      await a.service.idle();
      [heads, reads] = [0, 0];
      await a.service.fireDueMany(['same'], 0);
      t.deepEqual([heads, reads], [0, 1]);
      a.service.prepareDue(['same'], T0 + 4 * HOUR);
      await a.service.idle();
      await clock.advanceTo(T0 + 4 * HOUR + 1000);
      [heads, reads] = [0, 0];
      const late = await a.service.fireDueMany(['same'], 0);
      await a.service.idle();
      t.deepEqual([heads, reads], [0, 1], 'a second late: read again');
      t.deepEqual(fired(a.dispatcher), ['same@3']);
      t.false(late[0] instanceof Error);
    },
  );
}

for (const backend of backends) {
  backend.declare(
    `${backend.name}: a plan is made again for a schedule deleted and registered again meanwhile`,
    async (t) => {
      const open = await backend.setup(t);
      const at = T0 + 3 * HOUR;
      const clock = new ManualClock(at - 1500);
      const a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('rr', { scheduleEngine: 'None' }));
      await a.service.fireDueMany(['rr'], 0); // windows 0 and 1
      await a.service.idle();
      a.dispatcher.submitted.length = 0;
      a.service.prepareDue(['rr'], at);
      await a.service.idle();
      await clock.advance(10); // the new row's write time differs from the old one's
      await b.service.unregister('rr');
      const again = await b.service.register(info('rr', { scheduleEngine: 'None', startTime: T0 + 5 * HOUR }));
      t.is(again.version, 5, 'its versions go on from the deleted row (3)');
      await clock.advanceTo(at);
      const [answer] = await a.service.fireDueMany(['rr'], 0);
      await a.service.idle();
      t.deepEqual(a.dispatcher.submitted, [], 'registered again to start at 05:00: nothing is due at 03:00');
      t.like(answer, { nextDueTime: T0 + 6 * HOUR });
    },
  );

  backend.declare(
    `${backend.name}: a re-read that fails answers for the groups re-read only; the planned ones fire and answer`,
    async (t) => {
      const open = await backend.setup(t);
      let failReads = false;
      const failing = async (): Promise<ScheduleStore> => {
        const store = await open();
        return Object.assign(Object.create(store) as ScheduleStore, {
          schedulesWithLast: (queries: readonly { groupId: string; dueBy?: number }[]) =>
            failReads ? Promise.reject(new Error('reads failed')) : store.schedulesWithLast(queries),
        });
      };
      const at = T0 + 3 * HOUR;
      const clock = new ManualClock(at - 1500);
      const a = await replica(failing, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      const groups = ['p1', 'p2', 'p3', 'changed'];
      for (const g of groups) await a.service.register(info(g, { scheduleEngine: 'None' }));
      await a.service.fireDueMany(groups, 0);
      await a.service.idle();
      a.dispatcher.submitted.length = 0;
      a.service.prepareDue(groups, at);
      await a.service.idle();
      await b.service.pause('changed');
      await clock.advanceTo(at);
      failReads = true;
      const answers = await a.service.fireDueMany(groups, 0);
      // Settled with the call: nothing of it is still under way.
      t.deepEqual(a.dispatcher.submitted.map((s) => s.groupId).sort(), ['p1', 'p2', 'p3']);
      for (const [k, g] of groups.slice(0, 3).entries())
        t.like(answers[k], { nextDueTime: T0 + 4 * HOUR }, `${g} answers its own fire`);
      t.true(answers[3] instanceof Error && answers[3].message === 'reads failed', 'the re-read group fails alone');
      await a.service.idle();
    },
  );
}

test('once stop() has begun, FireDue, TriggerWindow, ClaimWindow and Backfill answer UNAVAILABLE; stop() returns while callers keep asking', async (t) => {
  const open = await sqlite.setup(t);
  const clock = new ManualClock(T0 + 2 * HOUR + 10);
  const a = await replica(open, clock, 'a');
  await a.service.register(info('g', { scheduleEngine: 'None' }));
  // An external engine keeps two FireDue calls in flight (the gRPC server is still open while the service stops).
  let asking = true;
  const codes = new Set<string | undefined>();
  const lane = async () => {
    while (asking) {
      await a.service.fireDue('g', 0).catch((err: unknown) => codes.add(codeOf(err)));
      await new Promise((r) => setImmediate(r));
    }
  };
  const lanes = [lane(), lane()];
  await new Promise((r) => setTimeout(r, 20));
  const stopped = await Promise.race([
    a.service.stop().then(() => 'stopped'),
    new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000)),
  ]);
  await new Promise((r) => setTimeout(r, 20)); // the callers keep asking a while after
  asking = false;
  await Promise.all(lanes);
  t.is(stopped, 'stopped');
  t.deepEqual([...codes], ['UNAVAILABLE'], 'the calls after stop() began were refused');
  const window = { boundaryType: 'TIME' as const, lowerBound: String(T0), upperBound: String(T0 + HOUR) };
  for (const call of [
    () => a.service.fireDueMany(['g'], 0),
    () => a.service.trigger('g', T0, true),
    () => a.service.claimWindow({ groupId: 'g', boundaries: window, triggeredBy: 'x', rerun: false }),
    () =>
      a.service.backfill({
        groupId: 'g',
        fromTime: T0,
        toTime: T0 + HOUR,
        mode: 'ALL',
        maxParallel: 1,
        reverse: false,
        dryRun: false,
      }),
  ])
    t.is(codeOf(await t.throwsAsync(call())), 'UNAVAILABLE');
});

for (const backend of backends) {
  backend.declare(
    `${backend.name}: windows whose claim was written but whose answer was lost are sent at once, not a lease later`,
    async (t) => {
      const open = await backend.setup(t);
      let loseAnswer = true;
      const lossy = async (): Promise<ScheduleStore> => {
        const store = await open();
        return Object.assign(Object.create(store) as ScheduleStore, {
          claimInstances: async (rows: readonly InstanceRecord[]) => {
            const claimed = await store.claimInstances(rows);
            if (loseAnswer) {
              loseAnswer = false;
              throw new Error('connection reset after the commit');
            }
            return claimed;
          },
        });
      };
      const clock = new ManualClock(T0 + 2 * HOUR + 10);
      const a = await replica(lossy, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('lost', { scheduleEngine: 'None' }));
      const fired = await a.service.fireDueChecked('lost', 0);
      await a.service.idle();
      t.false(loseAnswer, 'the claim failed after its commit');
      t.deepEqual(
        a.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
        [0, 1],
        'sent at once, each once',
      );
      t.deepEqual(
        fired.instances.map((i) => (i.windowStart - T0) / HOUR),
        [0, 1],
      );
      const rows = await a.service.listInstances({ groupId: 'lost', limit: 10 });
      t.deepEqual(
        rows.map((r) => r.state),
        ['SUCCEEDED', 'SUCCEEDED'],
      );

      // Two FireDue calls of one turn share one claim; when it fails, each is claimed again alone, finds its
      // windows taken (by its own rows), and sends them.
      for (const g of ['l2', 'l3']) await a.service.register(info(g, { scheduleEngine: 'None' }));
      a.dispatcher.submitted.length = 0;
      loseAnswer = true;
      await Promise.all([a.service.fireDueChecked('l2', 0), a.service.fireDueChecked('l3', 0)]);
      await a.service.idle();
      t.false(loseAnswer);
      t.deepEqual(a.dispatcher.submitted.map((s) => `${s.groupId}@${(Number(s.lowerBound) - T0) / HOUR}`).sort(), [
        'l2@0',
        'l2@1',
        'l3@0',
        'l3@1',
      ]);
    },
  );
}
