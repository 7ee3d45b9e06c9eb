/**
 * WatchJob streams are limited per process (SLUICE_MAX_WATCH_STREAMS): one more is RESOURCE_EXHAUSTED naming the
 * limit and the setting, and a stream's slot is given back when it is cancelled, when its job ends and when the
 * watch fails. The adapter runs on Sluice's gRPC server over a stand-in service whose jobs stay RUNNING until told.
 */
import anyTest, { type TestFn } from 'ava';
import { type ClientReadableStream, Metadata, type ServiceError, credentials, status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { notFound } from 'sluice/sdk';
import { JobState, OperatorServiceClient, type WatchJobResponse } from '../../proto/gen/sluice/operator/v1/operator.js';
import { Authenticator, parseTokens } from '../../services/core/auth.js';
import { ConfigError, loadConfig } from '../../services/core/config.js';
import { DEFAULT_MAX_WATCH_STREAMS } from '../../services/core/limits.js';
import { silentLogger } from '../../services/core/logger.js';
import { type RunningServer, startGrpcServer } from '../../services/core/server.js';
import type { JobRecord, JobState as DomainJobState } from '../../services/operator/domain/model.js';
import type { OperatorService } from '../../services/operator/domain/service.js';
import { operatorGrpc } from '../../services/operator/grpc/adapter.js';

const LIMIT = 3;

/** A stand-in for the operator's watchJob: jobs named `missing…` do not exist; the others run until ended. */
class Watches {
  readonly listeners = new Map<number, { jobId: string; listener: (job: JobRecord) => void }>();
  #next = 0;

  async watchJob(jobId: string, listener: (job: JobRecord) => void): Promise<() => void> {
    if (jobId.startsWith('missing')) throw notFound('job', jobId);
    const id = this.#next++;
    this.listeners.set(id, { jobId, listener });
    listener(job(jobId, 'RUNNING'));
    return () => this.listeners.delete(id);
  }

  /** The job ends: its watches hear SUCCEEDED. */
  end(jobId: string): void {
    for (const w of [...this.listeners.values()]) if (w.jobId === jobId) w.listener(job(jobId, 'SUCCEEDED'));
  }
}

function job(jobId: string, state: DomainJobState): JobRecord {
  return {
    jobId,
    groupId: 'g',
    streamId: 's1',
    instanceId: '',
    boundaries: { boundaryType: 'TIME', lowerBound: '0', upperBound: '1000' },
    generation: 1,
    state,
    runner: 'embedded',
    attempt: 1,
    resolvedSourceOptions: {},
    resolvedPositions: {},
    progress: { records: 0, bytes: 0, positions: {} },
    error: '',
    owner: 'op-1',
    createdAt: 1,
    updatedAt: 1,
  };
}

const test = anyTest as TestFn<{ server: RunningServer; client: OperatorServiceClient; watches: Watches }>;

test.before(async (t) => {
  const watches = new Watches();
  const { definition, implementation } = operatorGrpc(watches as unknown as OperatorService, silentLogger, {
    maxWatchStreams: LIMIT,
  });
  const server = await startGrpcServer(
    '127.0.0.1:0',
    [{ name: 'sluice.operator.v1.OperatorService', definition, implementation: implementation as never }],
    silentLogger,
  );
  t.context = { server, watches, client: new OperatorServiceClient(server.address, credentials.createInsecure()) };
});
test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.server?.shutdown(0);
});

type Stream = ClientReadableStream<WatchJobResponse>;

/** A stream that got its first message (the job as it is): it holds a slot. */
function open(client: OperatorServiceClient, jobId: string, metadata = new Metadata()): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const stream = client.watchJob({ jobId }, metadata);
    stream.once('data', () => resolve(stream));
    stream.on('error', (err: ServiceError) => (err.code === status.CANCELLED ? undefined : reject(err)));
  });
}

/** The error a stream ends with (it must end with one before sending anything). */
function refused(client: OperatorServiceClient, jobId: string, metadata = new Metadata()): Promise<ServiceError> {
  return new Promise((resolve, reject) => {
    const stream = client.watchJob({ jobId }, metadata);
    stream.on('data', () => reject(new Error(`WatchJob ${jobId} was served`)));
    stream.on('error', resolve);
  });
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 5 s`);
    await sleep(5);
  }
}

test.serial(
  'one stream past the limit is RESOURCE_EXHAUSTED naming the limit and its setting; a cancelled stream frees its slot',
  async (t) => {
    const { client, watches } = t.context;
    const streams = await Promise.all(Array.from({ length: LIMIT }, (_, i) => open(client, `job-${i}`)));
    t.is(watches.listeners.size, LIMIT);
    const err = await refused(client, 'job-one-more');
    t.is(err.code, status.RESOURCE_EXHAUSTED);
    t.deepEqual(err.metadata.get('sluice-error-code'), ['RESOURCE_EXHAUSTED']);
    t.is(
      err.details,
      `WatchJob: expected at most ${LIMIT} open streams of admin callers in this process (SLUICE_MAX_WATCH_STREAMS), got one more; close a stream or try again later`,
    );
    t.is(watches.listeners.size, LIMIT, 'the refused stream watches nothing');

    streams[0]!.cancel();
    await until('the cancelled stream unsubscribed', () => watches.listeners.size === LIMIT - 1);
    streams[0] = await open(client, 'job-after-cancel');
    t.is((await refused(client, 'job-one-more')).code, status.RESOURCE_EXHAUSTED, 'full again');
    for (const s of streams) s.cancel();
    await until('every stream unsubscribed', () => watches.listeners.size === 0);
  },
);

test.serial('a stream whose job ends, and a watch that fails, give their slots back', async (t) => {
  const { client, watches } = t.context;
  const streams = await Promise.all(Array.from({ length: LIMIT }, (_, i) => open(client, `job-end-${i}`)));
  // The job ends: the stream ends after its last state, and its slot is free.
  const last = new Promise<JobState[]>((resolve) => {
    const seen: JobState[] = [];
    streams[0]!.on('data', (m: WatchJobResponse) => seen.push(m.job!.state));
    streams[0]!.on('end', () => resolve(seen));
  });
  watches.end('job-end-0');
  t.deepEqual(await last, [JobState.JOB_STATE_SUCCEEDED]);
  streams[0] = await open(client, 'job-end-again');
  t.is((await refused(client, 'job-one-more')).code, status.RESOURCE_EXHAUSTED);

  // A watch that fails (no such job) holds no slot once it has failed.
  streams[1]!.cancel();
  await until('the cancelled stream unsubscribed', () => watches.listeners.size === LIMIT - 1);
  for (let i = 0; i < LIMIT + 2; i++) t.is((await refused(client, `missing-${i}`)).code, status.NOT_FOUND);
  streams[1] = await open(client, 'job-after-failures');
  t.is((await refused(client, 'job-one-more')).code, status.RESOURCE_EXHAUSTED);
  for (const s of streams) s.cancel();
  await until('every stream unsubscribed', () => watches.listeners.size === 0);
});

test.serial('viewers holding every slot leave admin callers (the schedule service) their own', async (t) => {
  const watches = new Watches();
  const { definition, implementation } = operatorGrpc(watches as unknown as OperatorService, silentLogger, {
    maxWatchStreams: LIMIT,
  });
  const server = await startGrpcServer(
    '127.0.0.1:0',
    [{ name: 'sluice.operator.v1.OperatorService', definition, implementation: implementation as never }],
    silentLogger,
    { auth: new Authenticator(parseTokens('viewer-token-0123456:viewer\nadmin-token-01234567:admin', 'test')) },
  );
  const client = new OperatorServiceClient(server.address, credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await server.shutdown(0);
  });
  const as = (token: string) => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  };
  const viewers = await Promise.all(
    Array.from({ length: LIMIT }, (_, i) => open(client, `viewed-${i}`, as('viewer-token-0123456'))),
  );
  const err = await refused(client, 'viewed-one-more', as('viewer-token-0123456'));
  t.is(err.code, status.RESOURCE_EXHAUSTED);
  t.regex(err.details, /open streams of viewer and operator callers/);
  const admins = await Promise.all(
    Array.from({ length: LIMIT }, (_, i) => open(client, `dispatched-${i}`, as('admin-token-01234567'))),
  );
  t.is(watches.listeners.size, 2 * LIMIT, 'the admin streams are served beside the viewers');
  t.is((await refused(client, 'dispatched-one-more', as('admin-token-01234567'))).code, status.RESOURCE_EXHAUSTED);
  for (const s of [...viewers, ...admins]) s.cancel();
  await until('every stream unsubscribed', () => watches.listeners.size === 0);
});

test('SLUICE_MAX_WATCH_STREAMS: 1,000 by default, a positive integer, or start-up stops naming it', (t) => {
  t.is(DEFAULT_MAX_WATCH_STREAMS, 1000);
  t.is(loadConfig({}).maxWatchStreams, DEFAULT_MAX_WATCH_STREAMS);
  t.is(loadConfig({ SLUICE_MAX_WATCH_STREAMS: '20000' }).maxWatchStreams, 20_000);
  for (const value of ['0', '-1', 'many'])
    t.throws(() => loadConfig({ SLUICE_MAX_WATCH_STREAMS: value }), {
      instanceOf: ConfigError,
      message: `SLUICE_MAX_WATCH_STREAMS: expected a positive integer, got ${JSON.stringify(value)}`,
    });
});
