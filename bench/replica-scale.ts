/**
 * What a schedule replica costs at 100,000 schedules on PostgreSQL (docs/operations.md, "How work is split"):
 * one schedule process started on a database holding that many registered schedules (built-in engine, first
 * windows a year away so nothing fires), against the same process on an empty one. Measured: the time of the
 * first full read (which arms every schedule), the resident memory it adds per armed schedule, and the time of a
 * periodic re-scan once every schedule is known (the service's own `schedules re-read` debug line).
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { openSluiceStore } from '../services/store/index.js';
import { normalizeInfo } from '../services/schedule/domain/info.js';
import { PG_URL, uniqueName } from '../test/helpers/databases.js';
import { spawnService } from '../test/helpers/process.js';
import { fmtMs } from './stats.js';

const RESCAN_MS = 20_000;

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** Starts a schedule process on `url`, waits for `rereads` full reads, and answers their times and its RSS. */
async function measure(
  url: string,
  rereads: number,
): Promise<{ reads: { schedules: number; ms: number }[]; rssKb: number }> {
  const proc = spawnService('services/schedule/main.ts', {
    SLUICE_DATABASE_URL: url,
    SLUICE_GRPC_ADDR: '127.0.0.1:0',
    SLUICE_OPERATOR_ADDR: '127.0.0.1:1',
    SLUICE_LOG_LEVEL: 'debug',
    SLUICE_SCHEDULE_RESCAN_MS: String(RESCAN_MS),
  });
  try {
    const reads = () =>
      proc.lines
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return undefined;
          }
        })
        .filter((e) => e?.msg === 'schedules re-read')
        .map((e) => ({ schedules: Number(e!.schedules), ms: Number(e!.ms) }));
    const deadline = Date.now() + 10 * 60_000;
    while (reads().length < rereads) {
      if (proc.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the schedule process did not re-read ${rereads} times:\n${proc.lines.slice(-20).join('\n')}`);
      await sleep(200);
    }
    return { reads: reads(), rssKb: await rssKb(proc.child.pid!) };
  } finally {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

export async function benchReplicaScale(out: (line?: string) => void, schedules = 100_000): Promise<void> {
  const database = uniqueName('sluice_scale');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
    const u = new URL(PG_URL);
    u.pathname = `/${database}`;
    const url = u.toString();
    const store = await openSluiceStore({ databaseUrl: url, sqlitePath: '' });
    const empty = await measure(url, 1);
    const start = Date.now() + 365 * 86_400_000;
    const info = normalizeInfo({
      groupId: 'scale-0',
      scheduleEngine: '',
      scheduleType: 0,
      scheduleUnit: 'H',
      scheduleInterval: 1,
      startTime: start,
      endTime: start + 86_400_000,
      delayTime: 0,
      selfDepend: 0,
      taskParallelism: 1,
      crontabExpression: '',
      version: 1,
      timeZone: 'UTC',
      catchUp: { mode: 'NONE', windowMs: 0 },
      alignment: 'END',
    });
    const now = Date.now();
    await store.insertSchedule({
      groupId: 'scale-0',
      info,
      status: 'REGISTERED',
      engineId: 'builtin',
      version: 2,
      createdAt: now,
      updatedAt: now,
    });
    await store.close();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(
      `INSERT INTO schedules (group_id, info, status, engine_id, version, created_at, updated_at)
       SELECT 'scale-' || i, jsonb_set(s.info, '{groupId}', to_jsonb('scale-' || i)), s.status, s.engine_id, s.version, s.created_at, s.updated_at
       FROM schedules s, generate_series(1, $1::int - 1) AS i WHERE s.group_id = 'scale-0'`,
      [schedules],
    );
    await db.end();
    const full = await measure(url, 2);
    const [first, again] = full.reads;
    const perScheduleKb = (full.rssKb - empty.rssKb) / schedules;
    out(`   Cost of one schedule replica at ${schedules.toLocaleString('en')} schedules (PostgreSQL, built-in engine)`);
    out(`   first full read, arming every schedule   ${fmtMs(first!.ms)} (${first!.schedules} schedules)`);
    out(`   periodic re-scan, every schedule known    ${fmtMs(again!.ms)}`);
    out(
      `   RSS empty / armed                         ${(empty.rssKb / 1024).toFixed(0)} MB / ${(full.rssKb / 1024).toFixed(0)} MB (${perScheduleKb.toFixed(2)} KB per schedule)`,
    );
    out();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}
