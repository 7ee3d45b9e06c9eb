/**
 * A long catch-up (catch-up ALL, a schedule starting far back) is fired in batches of FIRE_BATCH windows:
 * each FireDue answers at most a batch and nextDueTime = now, the built-in engine asks again at once, and
 * in the end every missed window has fired once, oldest first.
 */
import test from 'ava';
import { FIRE_BATCH } from '../../services/schedule/domain/service.js';
import { DAY, HOUR, T0, info, scheduleRig } from '../helpers/schedule.js';

const WINDOWS = 10 * FIRE_BATCH + 7;

test.serial('a long catch-up fires in bounded batches, every window once, oldest first', async (t) => {
  const now = T0 + WINDOWS * HOUR + 60_000;
  const rig = await scheduleRig(now);
  t.teardown(() => rig.close());
  await rig.service.register(info('far-back', { endTime: T0 + 400 * DAY, scheduleEngine: 'None' }));
  const first = await rig.service.fireDueChecked('far-back', 0);
  t.is(first.instances.length, FIRE_BATCH, 'one batch per call');
  t.is(first.nextDueTime, now, 'the rest is due at once');
  for (let i = 0; i < 20; i++) {
    const r = await rig.service.fireDueChecked('far-back', 0);
    if (r.nextDueTime !== now) break;
  }
  await rig.service.idle();
  const starts = rig.dispatcher.submitted.map((s) => (Number(s.lowerBound) - T0) / HOUR);
  t.is(starts.length, WINDOWS);
  t.deepEqual(
    [...starts].sort((a, b) => a - b),
    Array.from({ length: WINDOWS }, (_, k) => k),
    'each window once',
  );
});

test.serial('with the built-in engine, register answers at once and the batches follow by themselves', async (t) => {
  const now = T0 + WINDOWS * HOUR + 60_000;
  const rig = await scheduleRig(now);
  t.teardown(() => rig.close());
  const began = performance.now();
  await rig.service.register(info('engine-far-back', { endTime: T0 + 400 * DAY }));
  t.true(performance.now() - began < 3_000);
  await rig.advanceTo(now);
  for (let i = 0; i < 200 && rig.dispatcher.submitted.length < WINDOWS; i++) {
    await new Promise((r) => setTimeout(r, 50));
    await rig.advanceTo(now);
  }
  t.is(new Set(rig.dispatcher.submitted.map((s) => s.lowerBound)).size, WINDOWS);
  t.is(rig.dispatcher.submitted.length, WINDOWS);
});
