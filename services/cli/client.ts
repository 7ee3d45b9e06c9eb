import {
  type CallOptions,
  type ChannelCredentials,
  type Client,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { UsageError } from './time.js';
import { CatalogServiceClient } from '../../proto/gen/sluice/catalog/v1/catalog.js';
import { OperatorServiceClient } from '../../proto/gen/sluice/operator/v1/operator.js';
import { ScheduleServiceClient } from '../../proto/gen/sluice/schedule/v1/schedule.js';

/** Connection settings shared by every command. */
export interface ClientOptions {
  /** The all-in-one process; each service's own address, when given, wins (services run apart, as in compose). */
  readonly addr: string;
  readonly catalogAddr?: string;
  readonly scheduleAddr?: string;
  readonly operatorAddr?: string;
  readonly token?: string;
  readonly tls?: boolean;
  /** PEM files: the CA to trust instead of the system's, and a client certificate and key (mutual TLS). */
  readonly tlsCaFile?: string;
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
}

/** Channel credentials: plaintext, or TLS when --tls or any TLS file is given. */
export function channelCredentials(options: ClientOptions): ChannelCredentials {
  const tls = options.tls || options.tlsCaFile || options.tlsCertFile || options.tlsKeyFile;
  if (!tls) return credentials.createInsecure();
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined))
    throw new UsageError(
      options.tlsCertFile ? '--tls-key' : '--tls-cert',
      'both --tls-cert and --tls-key (a client certificate needs its key)',
      'only one of them',
    );
  const read = (flag: string, file: string | undefined) => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(
        flag,
        'a readable PEM file',
        `${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      );
    }
  };
  return credentials.createSsl(
    read('--tls-ca', options.tlsCaFile),
    read('--tls-key', options.tlsKeyFile),
    read('--tls-cert', options.tlsCertFile),
  );
}

/** The three services of Sluice: at one address (the all-in-one process) or each at its own. */
export class Clients {
  readonly catalog: CatalogServiceClient;
  readonly operator: OperatorServiceClient;
  readonly schedule: ScheduleServiceClient;
  readonly #metadata: Metadata;

  constructor(options: ClientOptions) {
    const creds = channelCredentials(options);
    this.catalog = new CatalogServiceClient(options.catalogAddr ?? options.addr, creds);
    this.operator = new OperatorServiceClient(options.operatorAddr ?? options.addr, creds);
    this.schedule = new ScheduleServiceClient(options.scheduleAddr ?? options.addr, creds);
    this.#metadata = new Metadata();
    if (options.token) this.#metadata.set('authorization', `Bearer ${options.token}`);
  }

  /** Calls one unary method (bound to its client) with the token and a deadline. */
  call<Req, Res>(client: Client, fn: UnaryMethod<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(client, req, this.#metadata, { deadline: Date.now() + 30_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** The metadata every call carries (the bearer token), for streaming calls. */
  get metadata(): Metadata {
    return this.#metadata;
  }

  close(): void {
    this.catalog.close();
    this.operator.close();
    this.schedule.close();
  }
}

/** The widest overload of a ts-proto grpc-js client method. */
export type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

export interface FieldProblem {
  readonly path: string;
  readonly message: string;
}

/** A gRPC failure as the CLI prints it: status name, message, and each field path with its message. */
export function describeServiceError(err: ServiceError): { status: string; message: string; fields: FieldProblem[] } {
  const raw = err.metadata?.get('sluice-field-errors')[0];
  let fields: FieldProblem[] = [];
  if (raw !== undefined) {
    try {
      const parsed = JSON.parse(String(raw)) as {
        path: string;
        expected?: string;
        received?: string;
        message?: string;
      }[];
      fields = parsed.map((f) => ({
        path: f.path,
        message: f.message?.startsWith(`${f.path}: `)
          ? f.message.slice(f.path.length + 2)
          : (f.message ?? `expected ${f.expected ?? '?'}, got ${f.received ?? '?'}`),
      }));
    } catch {
      fields = [];
    }
  }
  return { status: status[err.code] ?? String(err.code), message: err.details || err.message, fields };
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}
