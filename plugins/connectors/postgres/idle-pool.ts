import type pg from 'pg';

/**
 * Connections a job has finished with, kept for the next job to the same URL: a job opens two (its
 * reader's and its writer's), and opening one (TCP, startup, authentication, a new server process) costs
 * several milliseconds of both sides' CPU, which is most of a small job. The pool is per module instance,
 * so per worker thread: every job thread loads the plugin on its own, and connections are not shared
 * between threads.
 *
 * A connection is kept only when its job ended it cleanly: no error, no query running, no transaction
 * open (`getTransactionStatus() === 'I'`, after COMMIT or ROLLBACK). Anything else is closed. What a
 * session carries from one job to the next is what every job sets anyway (time zone, DateStyle,
 * IntervalStyle, application_name): jobs set no other session state (their advisory locks are
 * transaction-level). The taker checks a kept connection with a round trip before using it.
 *
 * Not pg.Pool: its `max` bounds the connections in use (a job beyond it would wait), and it has no
 * separate cap on idle ones; here each job opens what it needs and only the idle ones are capped.
 */

/** Kept connections per URL, at most. */
export const MAX_IDLE_PER_URL = 16;
/** A kept connection is closed after this long unused, ms. */
export const IDLE_TIMEOUT_MS = 10_000;

interface Kept {
  readonly client: pg.Client;
  readonly timer: NodeJS.Timeout;
}

/** Keyed by the whole URL (it holds the password: never logged, never in a message). */
const kept = new Map<string, Kept[]>();
/** Connections that reported an error or an end: never kept. */
const broken = new WeakSet<pg.Client>();

/** pg.Client's ref()/unref() (its socket's; pg 8), which @types/pg does not declare. */
const socketOf = (client: pg.Client) => client as unknown as { ref(): void; unref(): void };

/** Marks the client broken on its first error or end; call once, on a new client. */
export function watch(client: pg.Client): void {
  client.on('error', () => broken.add(client));
  client.on('end', () => broken.add(client));
}

/** A kept connection to the URL (the most recently kept), or undefined. The caller checks it. */
export function take(url: string): pg.Client | undefined {
  const list = kept.get(url);
  const entry = list?.pop();
  if (list && list.length === 0) kept.delete(url);
  if (!entry) return undefined;
  clearTimeout(entry.timer);
  socketOf(entry.client).ref();
  return entry.client;
}

/** Gives a job's connection back: kept when it is clean and there is room, otherwise closed. */
export async function give(url: string, client: pg.Client): Promise<void> {
  const list = kept.get(url) ?? [];
  const clean = !broken.has(client) && client.getTransactionStatus() === 'I';
  if (!clean || list.length >= MAX_IDLE_PER_URL) {
    await client.end().catch(() => {});
    return;
  }
  const timer = setTimeout(() => {
    const now = kept.get(url);
    const i = now?.findIndex((k) => k.client === client) ?? -1;
    if (i >= 0) now!.splice(i, 1);
    if (now && now.length === 0) kept.delete(url);
    void client.end().catch(() => {});
  }, IDLE_TIMEOUT_MS);
  timer.unref();
  // A kept connection does not keep the thread or process alive.
  socketOf(client).unref();
  list.push({ client, timer });
  kept.set(url, list);
}

/** How many connections are kept (all URLs). For tests. */
export function keptCount(): number {
  let n = 0;
  for (const list of kept.values()) n += list.length;
  return n;
}

/** Closes every kept connection. */
export async function closeAll(): Promise<void> {
  const all = [...kept.values()].flat();
  kept.clear();
  await Promise.all(
    all.map(async ({ client, timer }) => {
      clearTimeout(timer);
      await client.end().catch(() => {});
    }),
  );
}
