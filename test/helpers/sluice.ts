import { type CallOptions, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CatalogServiceClient } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { loadConfig } from '../../services/core/config.js';
import { silentLogger } from '../../services/core/logger.js';
import { type Sluice, type StartOptions, startSluice } from '../../services/runtime.js';

export interface Running {
  readonly sluice: Sluice;
  readonly address: string;
  readonly catalog: CatalogServiceClient;
  close(): Promise<void>;
}

/** Starts Sluice on a free loopback port with the given settings, and a catalog client for it. */
export async function startTestSluice(
  env: NodeJS.ProcessEnv = {},
  options: Partial<StartOptions> = {},
): Promise<Running> {
  const dataDir = env.SLUICE_DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'sluice-test-')));
  const made = env.SLUICE_DATA_DIR === undefined;
  // A start that fails (a setting refused, a port taken) leaves no data folder behind.
  const start = async () => {
    const config = loadConfig({
      SLUICE_GRPC_ADDR: '127.0.0.1:0',
      // With authentication on the HTTP server starts too: a free port, not the default 8080 a running Sluice may hold.
      SLUICE_HTTP_ADDR: '127.0.0.1:0',
      SLUICE_SHUTDOWN_GRACE_MS: '1000',
      SLUICE_DATA_DIR: dataDir,
      // Tests write their files under the system's temp folder.
      SLUICE_FILE_ROOTS: tmpdir(),
      ...env,
    });
    return startSluice({ config, logger: silentLogger, ...options });
  };
  const sluice = await start().catch(async (err: unknown) => {
    if (made) await rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const address = sluice.server.address;
  const catalog = new CatalogServiceClient(address, credentials.createInsecure());
  return {
    sluice,
    address,
    catalog,
    async close() {
      catalog.close();
      await sluice.close();
      if (made) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The widest overload of a ts-proto grpc-js client method; naming it lets TypeScript infer the request
 * and response types from a bound method (inference from overloads uses the last one).
 */
type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Metadata carrying `authorization: Bearer <token>`. */
export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** Promisifies one unary call of a ts-proto grpc-js client. */
export function call<Req, Res>(fn: UnaryMethod<Req, Res>, req: Req, metadata = new Metadata()): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, metadata, {}, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Calls and expects a failure; returns the error with the Sluice trailers read out. */
export async function callError<Req, Res>(
  fn: UnaryMethod<Req, Res>,
  req: Req,
  metadata = new Metadata(),
): Promise<
  ServiceError & { sluiceCode?: string; fieldErrors?: { path: string; expected: string; received: string }[] }
> {
  try {
    await call(fn, req, metadata);
  } catch (err) {
    const e = err as ServiceError;
    const md = e.metadata as Metadata | undefined;
    const code = md?.get('sluice-error-code')[0];
    const fields = md?.get('sluice-field-errors')[0];
    return Object.assign(e, {
      ...(code !== undefined ? { sluiceCode: String(code) } : {}),
      ...(fields !== undefined ? { fieldErrors: JSON.parse(String(fields)) } : {}),
    });
  }
  throw new Error('expected the call to fail, but it succeeded');
}
