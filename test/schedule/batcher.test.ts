import anyTest, { type TestFn } from 'ava';
import { Batcher } from '../../services/schedule/domain/batcher.js';
import type { InstanceRecord } from '../../services/schedule/domain/model.js';

const test = anyTest as TestFn<unknown>;

const row = (id: string): InstanceRecord => ({
  instanceId: id,
  groupId: `g-${id}`,
  windowStart: 0,
  windowEnd: 1,
  dueTime: 1,
  state: 'DISPATCHED',
  trigger: 'SCHEDULE',
  jobIds: [],
  attempt: 1,
  owner: 'a',
  createdAt: 1,
  updatedAt: 1,
  dispatchedAt: 1,
});

/** A store stand-in: records each write; ids starting with `taken` are refused, `poison` fails the write. */
function fakeStore() {
  const writes: string[][] = [];
  const claimMany = async (rows: readonly InstanceRecord[]) => {
    writes.push(rows.map((r) => r.instanceId));
    await new Promise((r) => setTimeout(r, 5));
    if (rows.some((r) => r.instanceId.startsWith('poison'))) throw new Error('constraint failed');
    return rows.map((r) => (r.instanceId.startsWith('taken') ? undefined : r));
  };
  return { writes, claimMany };
}

test('items asked for in one turn are one write, each caller answered its own rows in order', async (t) => {
  const store = fakeStore();
  const batcher = new Batcher(store.claimMany, 100);
  const answers = await Promise.all([
    batcher.run([row('a1'), row('taken-a2')]),
    batcher.run([row('b1')]),
    batcher.run([]),
    batcher.run([row('taken-c1'), row('c2'), row('c3')]),
  ]);
  t.deepEqual(store.writes, [['a1', 'taken-a2', 'b1', 'taken-c1', 'c2', 'c3']]);
  t.deepEqual(
    answers.map((rows) => rows.map((r) => r?.instanceId)),
    [['a1', undefined], ['b1'], [], [undefined, 'c2', 'c3']],
  );
});

test('a write holds at most maxBatch items; items asked for while one is out go into the next', async (t) => {
  const store = fakeStore();
  const batcher = new Batcher(store.claimMany, 3);
  const first = Array.from({ length: 7 }, (_, i) => batcher.run([row(`r${i}`)]));
  // Arrives while the first write is out.
  await new Promise((r) => setImmediate(r));
  const late = batcher.run([row('late')]);
  // A caller asking for more than maxBatch at once is written alone, not split.
  const big = batcher.run([row('x1'), row('x2'), row('x3'), row('x4')]);
  await Promise.all([...first, late, big]);
  t.deepEqual(store.writes, [
    ['r0', 'r1', 'r2'],
    ['r3', 'r4', 'r5'],
    ['r6', 'late'],
    ['x1', 'x2', 'x3', 'x4'],
  ]);
});

test('a failing write does not fail the other callers of its batch: each is written again on its own', async (t) => {
  const store = fakeStore();
  const batcher = new Batcher(store.claimMany, 100);
  const [good, bad, other] = await Promise.allSettled([
    batcher.run([row('g1')]),
    batcher.run([row('poison-1')]),
    batcher.run([row('o1'), row('taken-o2')]),
  ]);
  t.deepEqual(good, { status: 'fulfilled', value: [row('g1')] });
  t.is(bad.status, 'rejected');
  t.regex(String((bad as PromiseRejectedResult).reason), /constraint failed/);
  t.deepEqual(other, { status: 'fulfilled', value: [row('o1'), undefined] });
  t.deepEqual(store.writes, [['g1', 'poison-1', 'o1', 'taken-o2'], ['g1'], ['poison-1'], ['o1', 'taken-o2']]);
  // The batcher keeps working after a failure.
  t.deepEqual(await batcher.run([row('after')]), [row('after')]);
});

test('maxBatch must be a positive integer', (t) => {
  const store = fakeStore();
  t.throws(() => new Batcher(store.claimMany, 0), { message: /maxBatch must be an integer >= 1, got 0/ });
});
