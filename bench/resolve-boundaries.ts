import {
  credentials,
  Server,
  ServerCredentials,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  CatalogServiceClient,
  CatalogServiceService,
  type ResolveBoundariesRequest,
  type ResolveBoundariesResponse,
} from '../proto/gen/sluice/catalog/v1/catalog.js';
import { BoundaryType } from '../proto/gen/sluice/common/v1/common.js';
import { startTestSluice } from '../test/helpers/sluice.js';
import { now, percentile, sortedCopy } from './stats.js';

export const REQUEST: ResolveBoundariesRequest = {
  connectorId: 'datagen',
  options: { intervalMs: 1000 },
  boundaries: { boundaryType: BoundaryType.BOUNDARY_TYPE_TIME, lowerBound: '0', upperBound: '10000' },
};

export interface Series {
  readonly name: string;
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
}

export interface RpcResult {
  readonly sluice: Series;
  /** Same method, same request and same response bytes, from a handler that answers at once. */
  readonly noopSamePayload: Series;
  /** An empty request and empty response (ListPluginProblems → { problems: [] }) on the same no-op server. */
  readonly noopEmpty: Series;
  readonly warmup: number;
  readonly block: number;
}

export interface RpcOptions {
  readonly warmup?: number;
  readonly calls?: number;
  readonly block?: number;
}

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;

/** One unary call as a promise; the same for every series, so its own cost cancels out in the ratios. */
function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** A bare grpc-js server on loopback whose handlers do nothing but answer: the reference. */
async function startNoopServer(
  response: ResolveBoundariesResponse,
): Promise<{ address: string; close(): Promise<void> }> {
  const server = new Server();
  const implementation: Partial<Record<keyof typeof CatalogServiceService, unknown>> = {
    resolveBoundaries: (_call: unknown, cb: (err: null, res: ResolveBoundariesResponse) => void) => cb(null, response),
    listPluginProblems: (_call: unknown, cb: (err: null, res: { problems: [] }) => void) => cb(null, { problems: [] }),
  };
  server.addService(CatalogServiceService, implementation as UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

async function timeCalls<Req, Res>(
  fn: Unary<Req, Res>,
  req: Req,
  count: number,
  into: number[] | undefined,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const t0 = now();
    await call(fn, req);
    into?.push(now() - t0);
  }
}

function summarize(name: string, samples: readonly number[]): Series {
  const sorted = sortedCopy(samples);
  return { name, samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/**
 * ResolveBoundaries against a running Sluice versus no-op grpc-js calls on a second server in the
 * same process, measured in interleaved blocks so that the shared machine's noise hits all alike.
 */
export async function benchResolveBoundaries(opts: RpcOptions = {}): Promise<RpcResult> {
  const warmup = opts.warmup ?? 500;
  const calls = opts.calls ?? 5000;
  const block = opts.block ?? 500;

  const sluice = await startTestSluice();
  let noop: { address: string; close(): Promise<void> } | undefined;
  let client: CatalogServiceClient | undefined;
  try {
    const sluiceRb: Unary<ResolveBoundariesRequest, ResolveBoundariesResponse> = sluice.catalog.resolveBoundaries.bind(
      sluice.catalog,
    );
    const answer = await call(sluiceRb, REQUEST);
    if (answer.boundedOptions?.['datagen.stop-id'] !== 10) {
      throw new Error(`unexpected ResolveBoundaries answer: ${JSON.stringify(answer)}`);
    }
    // The reference answers with exactly the bytes Sluice answered with.
    noop = await startNoopServer(answer);
    client = new CatalogServiceClient(noop.address, credentials.createInsecure());
    const noopRb: Unary<ResolveBoundariesRequest, ResolveBoundariesResponse> = client.resolveBoundaries.bind(client);
    const noopEmpty: Unary<object, unknown> = client.listPluginProblems.bind(client);

    const series: { name: string; run: (n: number, into?: number[]) => Promise<void>; samples: number[] }[] = [
      { name: 'Sluice ResolveBoundaries', run: (n, into) => timeCalls(sluiceRb, REQUEST, n, into), samples: [] },
      { name: 'no-op, same payload', run: (n, into) => timeCalls(noopRb, REQUEST, n, into), samples: [] },
      { name: 'no-op, empty messages', run: (n, into) => timeCalls(noopEmpty, {}, n, into), samples: [] },
    ];

    for (const s of series) await s.run(warmup);
    const rounds = Math.ceil(calls / block);
    for (let r = 0; r < rounds; r++) {
      const n = Math.min(block, calls - r * block);
      // Rotate which series goes first, so none always follows the same one.
      for (let k = 0; k < series.length; k++) {
        const s = series[(r + k) % series.length]!;
        await s.run(n, s.samples);
      }
    }
    const [a, b, c] = series.map((s) => summarize(s.name, s.samples));
    return { sluice: a!, noopSamePayload: b!, noopEmpty: c!, warmup, block };
  } finally {
    client?.close();
    await noop?.close();
    await sluice.close();
  }
}
