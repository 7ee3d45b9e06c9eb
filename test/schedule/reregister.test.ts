import anyTest, { type TestFn } from 'ava';
import type { EnginePlugin } from 'sluice/sdk';
import type { LoadedPlugin } from '../../services/host/loader.js';
import { ManualClock } from '../../services/schedule/domain/clock.js';
import { T0, info } from '../helpers/schedule.js';
import { replica, storeBackends } from '../helpers/store-rig.js';

const test = anyTest as TestFn<unknown>;
const backends = await storeBackends(test, 'sluice-reregister');

/** An engine that only records what the service tells it, as `<hook> <groupId> <delayTime>`. */
function recordingEngine(): { loaded: LoadedPlugin<EnginePlugin>; told: string[] } {
  const told: string[] = [];
  const plugin: EnginePlugin = {
    accept: (type) => type === 'recording',
    register: (i) => void told.push(`register ${i.groupId} ${i.delayTime}`),
    update: (i) => void told.push(`update ${i.groupId} ${i.delayTime}`),
    unregister: (groupId) => void told.push(`unregister ${groupId}`),
  };
  const loaded: LoadedPlugin<EnginePlugin> = {
    id: 'recording',
    kind: 'engine',
    manifest: { id: 'recording', kind: 'engine', apiVersion: 1, version: '1.0.0', description: 'records its calls' },
    dir: '/recording',
    entry: '/recording/index.js',
    plugin,
  };
  return { loaded, told };
}

/** Waits (on the real clock, where re-scans run) until `told` holds `entry` `count` times; false after 5 s. */
async function told(list: readonly string[], entry: string, count = 1): Promise<boolean> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
    if (list.filter((x) => x === entry).length >= count) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

for (const backend of backends) {
  backend.declare(
    `${backend.name}: a schedule deleted and registered again through one replica is armed again on the others`,
    async (t) => {
      const open = await backend.setup(t);
      const clock = new ManualClock(T0);
      const [ea, eb] = [recordingEngine(), recordingEngine()];
      // Re-scans every 50 ms stand for the announcements SQLite cannot make (PostgreSQL makes both).
      const a = await replica(open, clock, 'a', new Map([['recording', ea.loaded]]), { rescanMs: 50 });
      const b = await replica(open, clock, 'b', new Map([['recording', eb.loaded]]), { rescanMs: 50 });
      t.teardown(() => Promise.all([a.service.stop(), b.service.stop()]));
      const first = await a.service.register(info('again', { scheduleEngine: 'recording', delayTime: 1 }));
      t.is(first.version, 2);
      t.true(await told(eb.told, 'register again 1'), 'replica b arms the schedule replica a registered');

      await b.service.unregister('again');
      t.true(await told(ea.told, 'unregister again'), 'replica a disarms it once b deleted it');
      const second = await b.service.register(info('again', { scheduleEngine: 'recording', delayTime: 2 }));
      t.is(second.version, 5, "the deleted row's version (3) plus a registration's (2): newer than any seen");
      t.is((await b.service.get('again'))?.version, 5);
      t.true(
        await told(ea.told, 'register again 2'),
        'replica a arms the new registration (it knew version 3 of the deleted one)',
      );
      t.deepEqual(ea.told, ['register again 1', 'unregister again', 'register again 2']);

      // And an update through replica a, holding the new version, reaches replica b's engine.
      const updated = await a.service.update({ ...second.info, delayTime: 3, version: second.version });
      t.is(updated.version, 6);
      t.true(await told(eb.told, 'update again 3'));
    },
  );
}
