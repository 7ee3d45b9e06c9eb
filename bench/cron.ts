/**
 * Cron fire times (docs/benchmarks.md, section 6): 10,000 windows of `* * * * *` in Europe/Berlin,
 * from 2026-03-28 so that the spring-forward day is among them, computed
 * - by Sluice as ten PreviewWindows calls of 1,000 windows, in-process: the gRPC handler of
 *   services/schedule/grpc/adapter.ts called directly (decode, window generator, due times, encode
 *   with local ISO times), no transport;
 * - by Sluice's window generator alone (windowsAfter), for reference;
 * against croner (the reference) computing the same 10,000 fire times with nextRun in the same zone.
 * Runs are interleaved; each figure is the median of the rounds. The fire times are checked equal.
 */
import { Cron } from 'croner';
import type { ScheduleInfo } from 'sluice/sdk';
import { silentLogger } from '../services/core/logger.js';
import { HookRunner } from '../services/host/hook-runner.js';
import { ScheduleService } from '../services/schedule/domain/service.js';
import type { ScheduleStore } from '../services/schedule/domain/model.js';
import { windowSpec, windowsAfter } from '../services/schedule/domain/windows.js';
import { encodeInfo, scheduleGrpc } from '../services/schedule/grpc/adapter.js';
import type { PreviewWindowsRequest, PreviewWindowsResponse } from '../proto/gen/sluice/schedule/v1/schedule.js';
import { fmtMs, fmtRatio, now } from './stats.js';

export const CRON_RATIO_TARGET = 1.5;
const WINDOWS = 10_000;
const PER_CALL = 1000;
const ROUNDS = 9;
const EXPR = '* * * * *';
const START = Date.parse('2026-03-28T00:00:00+01:00');

function info(zone: string): ScheduleInfo {
  return {
    groupId: 'bench-cron',
    scheduleType: 1,
    scheduleUnit: '',
    scheduleInterval: 0,
    startTime: START,
    endTime: START + 365 * 86_400_000,
    delayTime: 0,
    selfDepend: 0,
    taskParallelism: 1,
    crontabExpression: EXPR,
    scheduleEngine: 'builtin',
    version: 0,
    timeZone: zone,
    catchUp: { mode: 'ALL', windowMs: 0 },
    alignment: 'END',
  };
}

type Preview = (request: PreviewWindowsRequest) => Promise<PreviewWindowsResponse>;

function inProcessPreview(): Preview {
  const clock = { now: () => START, scheduleAt: () => ({ cancel() {} }) };
  const service = new ScheduleService({
    // PreviewWindows with an inline schedule reads no store.
    store: {} as ScheduleStore,
    engines: new Map(),
    hooks: new HookRunner({ timeoutMs: 10_000 }),
    clock,
    dispatcher: {
      submit: () => Promise.reject(new Error('not used')),
      follow: () => Promise.reject(new Error('not used')),
    },
    logger: silentLogger,
    owner: 'bench',
  });
  const handler = scheduleGrpc(service, clock, silentLogger).implementation.previewWindows;
  return (request) =>
    new Promise((resolve, reject) => {
      const call = { request } as unknown as Parameters<typeof handler>[0];
      handler(call, (err, response) =>
        err || !response ? reject(err ?? new Error('no response')) : resolve(response),
      );
    });
}

/** Ten PreviewWindows calls of 1,000, each from the end of the previous: the 10,000 window ends. */
async function sluicePreview(preview: Preview, zone: string): Promise<number[]> {
  const pbInfo = encodeInfo(info(zone), 0);
  const ends: number[] = [];
  let from = START;
  for (let i = 0; i < WINDOWS / PER_CALL; i++) {
    const res = await preview({ groupId: '', info: pbInfo, fromTime: from, count: PER_CALL });
    for (const w of res.windows) ends.push(Number(w.end));
    from = Number(res.windows[res.windows.length - 1]!.end);
  }
  return ends;
}

function sluiceGenerator(zone: string): number[] {
  const i = info(zone);
  const spec = windowSpec({ ...i, crontabExpression: EXPR });
  const ends: number[] = [];
  for (const w of windowsAfter(spec)) {
    ends.push(w.end);
    if (ends.length === WINDOWS) break;
  }
  return ends;
}

function croner(zone: string): number[] {
  const job = new Cron(EXPR, { timezone: zone, paused: true });
  const ends: number[] = [];
  let at = new Date(START);
  for (let i = 0; i < WINDOWS; i++) {
    const next = job.nextRun(at);
    if (!next) throw new Error('croner found no next run');
    ends.push(next.getTime());
    at = next;
  }
  return ends;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchCron(out: (line?: string) => void): Promise<void> {
  const preview = inProcessPreview();
  out(
    `6. Cron fire times: ${WINDOWS.toLocaleString('en-US')} windows of '${EXPR}' from 2026-03-28 (spring forward on the 29th), median of ${ROUNDS} interleaved rounds`,
  );
  const rows: string[][] = [['zone', 'series', 'time', 'vs croner', 'target', 'result']];
  for (const zone of ['Europe/Berlin', 'UTC']) {
    // The same fire times, or the comparison means nothing.
    const reference = croner(zone);
    const previewEnds = await sluicePreview(preview, zone);
    const generatorEnds = sluiceGenerator(zone);
    for (const [name, ends] of [
      ['PreviewWindows', previewEnds],
      ['generator', generatorEnds],
    ] as const) {
      const bad = ends.findIndex((e, i) => e !== reference[i]);
      if (ends.length !== WINDOWS || bad >= 0)
        throw new Error(
          `${zone}: Sluice ${name} and croner disagree at window ${bad} (${ends[bad]} vs ${reference[bad]})`,
        );
    }
    const times = { croner: [] as number[], preview: [] as number[], generator: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      let t0 = now();
      croner(zone);
      times.croner.push(now() - t0);
      t0 = now();
      await sluicePreview(preview, zone);
      times.preview.push(now() - t0);
      t0 = now();
      sluiceGenerator(zone);
      times.generator.push(now() - t0);
    }
    const ref = median(times.croner);
    const previewRatio = median(times.preview) / ref;
    rows.push([zone, 'croner nextRun (reference)', fmtMs(ref), '', '', '']);
    rows.push([
      zone,
      'Sluice, 10 PreviewWindows of 1,000 (in-process)',
      fmtMs(median(times.preview)),
      fmtRatio(previewRatio),
      zone === 'Europe/Berlin' ? `<= ${fmtRatio(CRON_RATIO_TARGET)}` : '',
      zone === 'Europe/Berlin' ? (previewRatio <= CRON_RATIO_TARGET ? 'met' : 'MISSED') : '',
    ]);
    rows.push([
      zone,
      'Sluice window generator alone',
      fmtMs(median(times.generator)),
      fmtRatio(median(times.generator) / ref),
      '',
      '',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  rows.forEach((r, n) => {
    out(r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
    if (n === 0) out(widths.map((w) => '-'.repeat(w)).join('  '));
  });
  out('   every series computed the same 10,000 fire times as croner (checked before timing)');
  out();
}
