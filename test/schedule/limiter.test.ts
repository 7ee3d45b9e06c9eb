import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Limiter } from '../../services/schedule/domain/limiter.js';

test('a Limiter runs at most max tasks at once, all of them in arrival order, failures included', async (t) => {
  const limiter = new Limiter(3);
  let active = 0;
  let peak = 0;
  const started: number[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      limiter.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++active);
        await sleep(i % 4);
        active--;
        if (i === 7) throw new Error('task 7 fails');
        return i;
      }),
    ),
  );
  t.is(peak, 3);
  t.deepEqual(
    started,
    Array.from({ length: 20 }, (_, i) => i),
  );
  t.is(results.filter((r) => r.status === 'fulfilled').length, 19, 'a failed task frees its slot');
  t.is(await limiter.run(async () => 'after'), 'after');
});

test('Limiter.idle resolves at once when nothing runs, else once every running and waiting task has ended', async (t) => {
  const limiter = new Limiter(1);
  await limiter.idle();
  const order: string[] = [];
  const tasks = [0, 1, 2].map((i) =>
    limiter.run(async () => {
      await sleep(5);
      order.push(`task ${i}`);
    }),
  );
  const idle = limiter.idle().then(() => order.push('idle'));
  await Promise.all([...tasks, idle]);
  t.deepEqual(order, ['task 0', 'task 1', 'task 2', 'idle']);
  // Idle again: resolves at once.
  await limiter.idle();
});
