import anyTest, { type TestFn } from 'ava';
import { ERROR_CODES, SluiceError } from 'sluice/sdk';
import { fileURLToPath } from 'node:url';
import { loadPlugins } from '../../services/host/loader.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import type { ScheduleStore } from '../../services/schedule/domain/model.js';
import { type ClaimWindowInput, type ScheduleService, offsetKey } from '../../services/schedule/domain/service.js';
import { HOUR, T0, info } from '../helpers/schedule.js';
import { replica as anyReplica, storeBackends } from '../helpers/store-rig.js';

// Windows submitted from outside the schedule (SubmitOfflineJob, the HTTP callback, an engine's
// submitOfflineJob) are claimed in the ledger first: checked against the schedule, recorded with who sent
// them, dispatched when due, never twice, never overlapping.

const test = anyTest as TestFn<unknown>;
// A third-party engine that never fires by itself: windows of its schedules run only as this file says.
const plugins = await loadPlugins({
  bundledDir: fileURLToPath(new URL('../fixtures/plugins/good/', import.meta.url)),
});
const engines = new Map([['plain-engine', plugins.engines.get('plain-engine')!]]);
const PLAIN = { scheduleEngine: 'plain' };
const backends = await storeBackends(test, 'sluice-claim');

/** A replica whose one engine never fires: only claims, timers, TriggerWindow and FireDue fire here. */
const replica = (open: () => Promise<ScheduleStore>, clock: ManualClock, owner: string) =>
  anyReplica(open, clock, owner, engines);

/** Moves the clock, letting the replicas' dispatches and follow-ups finish at each timer. */
async function advance(clock: ManualClock, to: number, ...services: ScheduleService[]) {
  await clock.advanceTo(to, async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      for (const s of services) await s.idle();
    }
  });
}

const time = (groupId: string, k: number, by = 'inlong:admin'): ClaimWindowInput => ({
  groupId,
  boundaries: { boundaryType: 'TIME', lowerBound: String(T0 + k * HOUR), upperBound: String(T0 + (k + 1) * HOUR) },
  triggeredBy: by,
  rerun: false,
});
const codeOf = (err: unknown) => (err as { code?: string }).code;
const fieldOf = (err: unknown) => (err as { details?: { field?: string } }).details?.field;

for (const backend of backends) {
  backend.declare(
    `${backend.name}: a due window is claimed once and dispatched once, however often it is sent`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 5 * HOUR);
      const a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('due', PLAIN));

      const [x, y] = await Promise.all([a.service.claimWindow(time('due', 2)), b.service.claimWindow(time('due', 2))]);
      const again = await a.service.claimWindow(time('due', 2, 'engine:other'));
      await Promise.all([a.service.idle(), b.service.idle()]);
      t.is(x.instance.instanceId, y.instance.instanceId, 'two replicas: one instance');
      t.is(again.instance.instanceId, x.instance.instanceId, 'a repeat: the same instance');
      t.deepEqual([x.created, y.created].sort(), [false, true]);
      t.false(again.created);
      const submitted = [...a.dispatcher.submitted, ...b.dispatcher.submitted];
      t.deepEqual(
        submitted.map((s) => [s.lowerBound, s.upperBound, s.instanceId]),
        [[String(T0 + 2 * HOUR), String(T0 + 3 * HOUR), x.instance.instanceId]],
        'dispatched once',
      );
      const winner = x.created ? x : y;
      t.is(winner.instance.state, 'DISPATCHED', 'a due window answers dispatched, its jobs known');
      t.deepEqual(winner.instance.jobIds.length, 1);
      t.deepEqual(again.instance.jobIds, winner.instance.jobIds, 'the repeat finds the same jobs');

      // ListInstances shows it as submitted from outside, with who sent it first.
      const rows = await a.service.listInstances({ groupId: 'due', limit: 10 });
      t.deepEqual(
        rows.map((r) => [r.windowStart, r.trigger, r.triggeredBy, r.state]),
        [[T0 + 2 * HOUR, 'EXTERNAL', 'inlong:admin', 'SUCCEEDED']],
      );
    },
  );

  backend.declare(
    `${backend.name}: a window sent before it is due is recorded SCHEDULED and runs at its due time, after a restart too`,
    async (t) => {
      const open = await backend.setup(t);
      // InLong's Quartz job sends a window at its start; Sluice's window is due at its end.
      const clock = new ManualClock(T0 + 3 * HOUR + 5_000);
      let a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('early', { scheduleEngine: 'None' }));
      await a.service.register(info('early-2', { scheduleEngine: 'None' }));

      const early = await a.service.claimWindow(time('early', 3));
      t.true(early.created);
      t.like(early.instance, { state: 'SCHEDULED', dueTime: T0 + 4 * HOUR, jobIds: [] });
      const kept = await a.service.claimWindow(time('early-2', 3));
      // FireDue before the due time: the window before it fires, the early one waits (it is not the watermark).
      const fired = await a.service.fireDue('early', T0 + 3 * HOUR + 5_000);
      await a.service.idle();
      t.deepEqual(
        fired.instances.map((i) => (i.windowStart - T0) / HOUR),
        [0, 1, 2],
      );
      t.is(fired.nextDueTime, T0 + 4 * HOUR);
      t.deepEqual(
        a.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
        [0, 1, 2],
      );

      // A restart of replica a: the early rows are read back and armed again; b sweeps them up too.
      await a.service.stop();
      a = await replica(open, clock, 'a');
      await advance(clock, T0 + 4 * HOUR - 1, a.service, b.service);
      t.is(a.dispatcher.submitted.length + b.dispatcher.submitted.length, 0, 'nothing runs before it is due');
      await advance(clock, T0 + 4 * HOUR, a.service, b.service);
      const ran = [...a.dispatcher.submitted, ...b.dispatcher.submitted].sort((x, y) =>
        x.groupId.localeCompare(y.groupId),
      );
      t.deepEqual(
        ran.map((s) => [s.groupId, (Number(s.lowerBound) - T0) / HOUR, s.at]),
        [
          ['early', 3, T0 + 4 * HOUR],
          ['early-2', 3, T0 + 4 * HOUR],
        ],
        'each early window dispatched once, at its due time',
      );
      const row = await a.service.listInstances({ groupId: 'early-2', limit: 10 });
      t.like(row[0], { instanceId: kept.instance.instanceId, state: 'SUCCEEDED', trigger: 'EXTERNAL' });
    },
  );

  backend.declare(
    `${backend.name}: a window sent early to a group then deleted is SKIPPED and never sent, by any replica, nor to a group created again`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 3 * HOUR + 5_000);
      const a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('gone', { scheduleEngine: 'None' }));
      const early = await a.service.claimWindow(time('gone', 3));
      t.like(early.instance, { state: 'SCHEDULED', dueTime: T0 + 4 * HOUR });
      // b knows the row too (its sweep arms it), so both replicas hold a timer for it.
      await advance(clock, T0 + 3 * HOUR + 60_000, a.service, b.service);

      await a.service.unregister('gone');
      const [row] = await a.service.listInstances({ groupId: 'gone', limit: 10 });
      t.like(row, {
        instanceId: early.instance.instanceId,
        state: 'SKIPPED',
        error: 'the group was deleted before the window was due',
      });
      await a.service.register(info('gone', { scheduleEngine: 'None' }));
      await advance(clock, T0 + 5 * HOUR, a.service, b.service);
      t.deepEqual([...a.dispatcher.submitted, ...b.dispatcher.submitted], [], 'never sent');
    },
  );

  backend.declare(
    `${backend.name}: a window recorded early is taken at its due time by one replica; the others leave it to that one`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 3 * HOUR + 5_000);
      const a = await replica(open, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('early', { scheduleEngine: 'None' }));
      await a.service.claimWindow(time('early', 3));
      // b starts after the claim and arms the row too. a's timer runs first and is still sending the window when
      // b's runs: the row is still SCHEDULED, now held by a.
      const b = await replica(open, clock, 'b');
      t.teardown(() => b.service.stop());
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const submit = a.dispatcher.submit.bind(a.dispatcher);
      a.dispatcher.submit = async (request) => {
        await gate;
        return submit(request);
      };
      await clock.advanceTo(T0 + 4 * HOUR);
      release();
      await Promise.all([a.service.idle(), b.service.idle()]);
      // (On PostgreSQL b's read may come before a's take-over: then b takes it and a leaves it.)
      const sent = [...a.dispatcher.submitted.map(() => 'a'), ...b.dispatcher.submitted.map(() => 'b')];
      t.is(sent.length, 1, `sent once (by ${sent.join(' and ')})`);
      const [row] = await a.service.listInstances({ groupId: 'early', limit: 10 });
      t.like(row, { owner: sent[0], state: 'SUCCEEDED' });
    },
  );

  backend.declare(
    `${backend.name}: a window recorded early whose TriggerWindow could not send it is sent at its due time by another replica`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 3 * HOUR + 5_000);
      const a = await replica(open, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('early', { scheduleEngine: 'None' }));
      await a.service.claimWindow(time('early', 3)); // due at 04:00: SCHEDULED, armed on a
      const b = await replica(open, clock, 'b'); // b arms it at start, as it is then
      t.teardown(() => b.service.stop());
      // TriggerWindow on a: the operator is out of reach, so the row stays SCHEDULED (owner a, written again).
      a.dispatcher.failSubmit = () => new SluiceError(ERROR_CODES.UNAVAILABLE, 'operator unreachable');
      await a.service.trigger('early', T0 + 3 * HOUR, false).catch(() => {});
      await a.service.idle();
      await a.service.stop(); // then a goes away, its timers with it
      await advance(clock, T0 + 4 * HOUR + 1000, b.service);
      t.deepEqual(
        b.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR),
        [3],
        'b sends it at its due time',
      );
      const [row] = await b.service.listInstances({ groupId: 'early', limit: 10 });
      t.like(row, { owner: 'b', state: 'SUCCEEDED' });
    },
  );

  backend.declare(`${backend.name}: TriggerWindow runs a window recorded early now`, async (t) => {
    const open = await backend.setup(t);
    const clock = new ManualClock(T0 + 30 * 60_000);
    const a = await replica(open, clock, 'a');
    t.teardown(() => a.service.stop());
    await a.service.register(info('now', PLAIN));
    const early = await a.service.claimWindow(time('now', 0));
    t.is(early.instance.state, 'SCHEDULED');
    const now = await a.service.trigger('now', T0, false);
    t.is(now.instanceId, early.instance.instanceId);
    t.is(now.state, 'DISPATCHED');
    await advance(clock, T0 + 2 * HOUR, a.service);
    t.is(
      a.dispatcher.submitted.filter((s) => s.lowerBound === String(T0)).length,
      1,
      'not dispatched again at its due time',
    );
  });

  backend.declare(
    `${backend.name}: TIME bounds that are not a window are refused naming the field and the nearest windows`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 5 * HOUR);
      const a = await replica(open, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('strict', PLAIN));
      const shifted = await t.throwsAsync(
        a.service.claimWindow({
          ...time('strict', 1),
          boundaries: {
            boundaryType: 'TIME',
            lowerBound: String(T0 + HOUR + 60_000),
            upperBound: String(T0 + 2 * HOUR + 60_000),
          },
        }),
      );
      t.is(codeOf(shifted), 'INVALID_ARGUMENT');
      t.is(fieldOf(shifted), 'lower_bound');
      t.regex(
        shifted.message,
        new RegExp(
          `nearest windows are \\[${T0 + HOUR}, ${T0 + 2 * HOUR}\\) \\(2026-01-01T01:00:00.000Z to 2026-01-01T02:00:00.000Z\\) and \\[${T0 + 2 * HOUR}, ${T0 + 3 * HOUR}\\)`,
        ),
      );
      const backwards = await t.throwsAsync(
        a.service.claimWindow({
          ...time('strict', 1),
          boundaries: { boundaryType: 'TIME', lowerBound: String(T0 + HOUR), upperBound: String(T0) },
        }),
      );
      t.is(fieldOf(backwards), 'upper_bound');
      t.deepEqual(await a.service.listInstances({ groupId: 'strict', limit: 10 }), [], 'nothing is recorded');
      t.is(a.dispatcher.submitted.length, 0, 'nothing runs');
    },
  );

  backend.declare(
    `${backend.name}: overlapping TIME windows of a manual group never both run, even sent at once`,
    async (t) => {
      const open = await backend.setup(t);
      // Every window below is due: each one recorded runs at once.
      const clock = new ManualClock(T0 + 100 * HOUR);
      const a = await replica(open, clock, 'a');
      const b = await replica(open, clock, 'b');
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]).then(() => undefined));
      await a.service.register(info('manual', { scheduleEngine: 'None' }));
      const span = (from: number, to: number): ClaimWindowInput => ({
        groupId: 'manual',
        boundaries: { boundaryType: 'TIME', lowerBound: String(from), upperBound: String(to) },
        triggeredBy: 'token:abc',
        rerun: false,
      });
      // Any well-formed bounds: a manual group has no windows to match.
      await a.service.claimWindow(span(T0, T0 + 90 * 60_000));
      const second = await t.throwsAsync(b.service.claimWindow(span(T0 + HOUR, T0 + 2 * HOUR)));
      t.is(codeOf(second), 'ALREADY_EXISTS');
      t.regex(second.message, new RegExp(`overlaps its recorded window \\[${T0}, ${T0 + 90 * 60_000}\\)`));
      const sameStart = await t.throwsAsync(a.service.claimWindow(span(T0, T0 + HOUR)));
      t.is(codeOf(sameStart), 'ALREADY_EXISTS');

      // Sent at once from two replicas: at most one of each overlapping pair runs.
      for (let k = 0; k < 5; k++) {
        const from = T0 + 5 * HOUR + k * 10 * HOUR;
        await Promise.allSettled([
          a.service.claimWindow(span(from, from + 2 * HOUR)),
          b.service.claimWindow(span(from + HOUR, from + 3 * HOUR)),
        ]);
      }
      await Promise.all([a.service.idle(), b.service.idle()]);
      const rows = await a.service.listInstances({ groupId: 'manual', limit: 100 });
      // Of two overlapping windows claimed at the same instant, both may give way (the caller may retry); never both stay.
      t.true(rows.length >= 1 && rows.length <= 6);
      for (const [i, r] of rows.entries())
        for (const o of rows.slice(i + 1))
          t.false(r.windowStart < o.windowEnd && o.windowStart < r.windowEnd, 'no two rows overlap');
      const dispatched = [...a.dispatcher.submitted, ...b.dispatcher.submitted].map((s) => s.lowerBound);
      t.is(dispatched.length, rows.length, 'only recorded windows ran');
    },
  );

  backend.declare(
    `${backend.name}: an OFFSET window is one ledger row with its bounds, dispatched as given`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0 + 5 * HOUR);
      const a = await replica(open, clock, 'a');
      t.teardown(() => a.service.stop());
      await a.service.register(info('offsets', PLAIN));
      const offsets: ClaimWindowInput = {
        groupId: 'offsets',
        boundaries: { boundaryType: 'OFFSET', lowerBound: '0:10,1:12', upperBound: '0:20,1:30' },
        triggeredBy: 'engine:airflow',
        rerun: false,
      };
      const first = await a.service.claimWindow(offsets);
      const again = await a.service.claimWindow(offsets);
      await a.service.idle();
      t.true(first.created);
      t.false(again.created);
      t.is(again.instance.instanceId, first.instance.instanceId);
      t.deepEqual(first.instance.boundaries, offsets.boundaries);
      t.true(first.instance.windowStart < 0, 'an OFFSET row is keyed apart from every TIME window');
      t.is(first.instance.windowStart, offsetKey('0:10,1:12', '0:20,1:30'));
      t.deepEqual(
        a.dispatcher.submitted.map((s) => [s.lowerBound, s.upperBound]),
        [['0:10,1:12', '0:20,1:30']],
      );
      const other = await a.service.claimWindow({
        ...offsets,
        boundaries: { ...offsets.boundaries, upperBound: '0:25,1:30' },
      });
      t.not(other.instance.instanceId, first.instance.instanceId, 'other bounds are another window');
      // The OFFSET rows are no TIME watermark: the schedule's own windows still fire from its start.
      const fired = await a.service.fireDue('offsets', 0);
      t.deepEqual(
        fired.instances.map((i) => (i.windowStart - T0) / HOUR),
        [0, 1, 2, 3, 4],
      );
      // A re-run of a finished OFFSET window runs it again under the same instance.
      await a.service.idle();
      const rerun = await a.service.claimWindow({ ...offsets, rerun: true });
      await a.service.idle();
      t.is(rerun.instance.instanceId, first.instance.instanceId);
      t.is(rerun.instance.attempt, 2);
      t.true(a.dispatcher.submitted.some((s) => s.instanceId === `${first.instance.instanceId}#2` && s.rerun));
    },
  );

  backend.declare(`${backend.name}: external windows count for Backfill MISSING and selfDepend`, async (t) => {
    const open = await backend.setup(t);
    const clock = new ManualClock(T0 + 5 * HOUR);
    const a = await replica(open, clock, 'a');
    t.teardown(() => a.service.stop());
    await a.service.register(info('seen', { scheduleEngine: 'None' }));
    await a.service.claimWindow(time('seen', 1));
    await a.service.claimWindow(time('seen', 3));
    await a.service.idle();
    const missing = await a.service.backfill({
      groupId: 'seen',
      fromTime: T0,
      toTime: T0 + 5 * HOUR,
      mode: 'MISSING',
      maxParallel: 1,
      reverse: false,
      dryRun: true,
    });
    t.deepEqual(
      missing.windows.map((w) => (w.start - T0) / HOUR),
      [0, 2, 4],
      'windows submitted from outside are not missing',
    );

    // selfDepend 1: the schedule runs its windows before the external one, one by one; then the failed
    // external window holds the next scheduled one back.
    await a.service.register(info('chain', { scheduleEngine: 'None', selfDepend: 1 }));
    a.dispatcher.outcome = async () => ({ succeeded: false, error: 'boom' });
    const failed = await a.service.claimWindow(time('chain', 4));
    await a.service.idle();
    t.is((await a.service.listInstances({ groupId: 'chain', limit: 10 }))[0]?.instanceId, failed.instance.instanceId);
    a.dispatcher.outcome = async () => ({ succeeded: true });
    await advance(clock, T0 + 6 * HOUR, a.service);
    const fired: number[] = [];
    for (let k = 0; k < 4; k++) {
      const res = await a.service.fireDue('chain', 0);
      await a.service.idle();
      fired.push(...res.instances.map((i) => (i.windowStart - T0) / HOUR));
    }
    t.deepEqual(fired, [0, 1, 2, 3], 'the windows before the external one, each after the previous succeeded');
    const next = await a.service.fireDue('chain', 0);
    t.deepEqual(
      next.instances.map((i) => [(i.windowStart - T0) / HOUR, i.state]),
      [[4, 'FAILED']],
    );
    t.false(
      a.dispatcher.submitted.some((s) => s.groupId === 'chain' && Number(s.lowerBound) === T0 + 5 * HOUR),
      'window 5 waits',
    );
  });
}
