/**
 * GrpcDispatcher.follow over WatchJob streams that break: after a stream that delivered the job, the next one is
 * opened after the first backoff step again, so a window hears its job's end promptly however many times
 * operators died under it. And what a submission that never got through rejects with.
 */
import { Server, ServerCredentials, status, type ServerWritableStream } from '@grpc/grpc-js';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { ERROR_CODES, isSluiceError, type SluiceError } from 'sluice/sdk';
import { silentLogger } from '../../services/core/logger.js';
import { GrpcDispatcher } from '../../services/schedule/grpc/dispatcher.js';
import {
  JobState,
  OperatorServiceService,
  Job,
  type WatchJobRequest,
  type WatchJobResponse,
} from '../../proto/gen/sluice/operator/v1/operator.js';

interface Ctx {
  server: Server;
  address: string;
  /** WatchJob calls so far, and the time of each. */
  opened: number[];
  /** Streams that send RUNNING and then break as a killed operator's do, before one that sends SUCCEEDED. */
  breaks: number;
  /** Streams that fail at once without sending anything (no operator there), before the breaking ones. */
  refusals: number;
  /** The status every SubmitOfflineJob fails with, and how many came. */
  submitStatus: status;
  submits: number;
}
const test = anyTest as TestFn<Ctx>;

const job = (state: JobState): Job =>
  Job.fromPartial({ jobId: 'job-1', groupId: 'g', streamId: 's1', state, attempt: 1 });

test.beforeEach(async (t) => {
  const ctx = { opened: [], breaks: 0, refusals: 0, submits: 0 } as unknown as Ctx;
  const server = new Server();
  const unimplemented = (_: unknown, cb: (e: { code: status }) => void) => cb({ code: status.UNIMPLEMENTED });
  const implementation = Object.fromEntries(
    Object.keys(OperatorServiceService).map((name) => [name, unimplemented]),
  ) as Record<string, unknown>;
  implementation.submitOfflineJob = (_: unknown, cb: (e: { code: status; details: string }) => void) => {
    ctx.submits++;
    cb({ code: ctx.submitStatus, details: 'the stand-in operator says no' });
  };
  implementation.watchJob = (call: ServerWritableStream<WatchJobRequest, WatchJobResponse>) => {
    ctx.opened.push(Date.now());
    if (ctx.refusals > 0) {
      ctx.refusals--;
      call.emit('error', { code: status.UNAVAILABLE, details: 'no operator here' });
      return;
    }
    if (ctx.breaks > 0) {
      ctx.breaks--;
      call.write({ job: job(JobState.JOB_STATE_RUNNING) });
      setTimeout(() => call.emit('error', { code: status.UNAVAILABLE, details: 'operator died' }), 20);
      return;
    }
    call.write({ job: job(JobState.JOB_STATE_SUCCEEDED) });
    call.end();
  };
  server.addService(OperatorServiceService, implementation as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  Object.assign(ctx, { server, address: `127.0.0.1:${port}` });
  t.context = ctx;
});
test.afterEach.always((t) => t.context.server?.forceShutdown());

test('a watch broken after each of 8 deliveries hears the end after 8 first-step backoffs, not a doubling one', async (t) => {
  const { context: c } = t;
  c.breaks = 8;
  const dispatcher = new GrpcDispatcher({
    address: c.address,
    logger: silentLogger,
    initialBackoffMs: 50,
    maxBackoffMs: 30_000,
  });
  t.teardown(() => dispatcher.close());
  const started = Date.now();
  let running = 0;
  const outcome = await dispatcher.follow(['job-1'], () => running++);
  const took = Date.now() - started;
  t.deepEqual(outcome, { succeeded: true });
  t.is(running, 1, 'RUNNING reported once for the window');
  t.is(c.opened.length, 9);
  // Doubling would wait 50 + 100 + ... + 6400 = 12.75 s, its last gap 6.4 s; 8 waits of 50 ms (and the 20 ms streams)
  // take well under a second, and the bounds leave room for a loaded machine.
  t.true(took < 8000, `ended after ${took} ms`);
  const gaps = c.opened.slice(1).map((at, i) => at - c.opened[i]!);
  t.true(Math.max(...gaps) < 3000, `gaps between watches ${gaps.join(', ')} ms`);
});

test('with no operator answering, the watch backs off doubling up to maxWatchBackoffMs, then hears the end', async (t) => {
  const { context: c } = t;
  c.refusals = 7;
  const dispatcher = new GrpcDispatcher({
    address: c.address,
    logger: silentLogger,
    initialBackoffMs: 40,
    maxBackoffMs: 30_000,
    maxWatchBackoffMs: 200,
  });
  t.teardown(() => dispatcher.close());
  t.deepEqual(await dispatcher.follow(['job-1'], () => {}), { succeeded: true });
  t.is(c.opened.length, 8);
  const gaps = c.opened.slice(1).map((at, i) => at - c.opened[i]!);
  // 40, 80, 160, then capped at 200 (a gap is the wait plus the call; timers fire late, never early).
  t.true(gaps[0]! >= 35, `gaps ${gaps.join(', ')}`);
  t.true(gaps[2]! >= 150, `gaps ${gaps.join(', ')}`);
  t.true(
    gaps.slice(3).every((g) => g >= 190),
    `capped gaps ${gaps.join(', ')}`,
  );
  // Four capped gaps take about 800 ms; doubling on would take 320 + 640 + 1280 + 2560 = 4800 ms. Summed, one late
  // timer on a loaded machine does not fail the test.
  const capped = gaps.slice(3).reduce((a, b) => a + b, 0);
  t.true(capped < 2500, `capped gaps ${gaps.join(', ')} ms: ${capped} ms in all`);
});

const window = {
  groupId: 'g',
  boundaryType: 'TIME',
  lowerBound: '0',
  upperBound: '1000',
  instanceId: 'i-1',
  rerun: false,
} as const;

/** Submits one window to the stand-in operator answering every SubmitOfflineJob with `code`; what it rejects with. */
async function submitFailing(t: ExecutionContext<Ctx>, code: status): Promise<Error> {
  const { context: c } = t;
  c.submitStatus = code;
  const dispatcher = new GrpcDispatcher({
    address: c.address,
    logger: silentLogger,
    initialBackoffMs: 5,
    maxAttempts: 3,
  });
  t.teardown(() => dispatcher.close());
  return (await t.throwsAsync(dispatcher.submit(window)))!;
}

test('a submission the operator never answers rejects UNAVAILABLE once its attempts ran out: it may pass later', async (t) => {
  const err = await submitFailing(t, status.UNAVAILABLE);
  t.true(isSluiceError(err), String(err));
  t.is((err as SluiceError).code, ERROR_CODES.UNAVAILABLE);
  t.regex(err.message, /UNAVAILABLE: the stand-in operator says no/);
  t.is(t.context.submits, 3);
});

test('a submission the operator refuses rejects at once as it came, not as UNAVAILABLE', async (t) => {
  const err = await submitFailing(t, status.INVALID_ARGUMENT);
  t.false(isSluiceError(err), String(err));
  t.is((err as unknown as { code: status }).code, status.INVALID_ARGUMENT);
  t.is(t.context.submits, 1);
});

test('a submission whose signal has aborted (the service stopping) sends nothing', async (t) => {
  const dispatcher = new GrpcDispatcher({ address: t.context.address, logger: silentLogger });
  t.teardown(() => dispatcher.close());
  const stopping = new AbortController();
  const reason = new Error('the schedule service is stopping');
  stopping.abort(reason);
  t.is(await t.throwsAsync(dispatcher.submit(window, stopping.signal)), reason);
  t.is(t.context.submits, 0);
});
