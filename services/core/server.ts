import { readFileSync } from 'node:fs';
import { Server, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'sluice/sdk';
import type { Authenticator } from './auth.js';
import { authInterceptor, openInterceptor, serverCredentials, type TlsFiles } from './grpc-auth.js';
import { DESCRIPTOR_SET, HEALTH_DESCRIPTOR_SET } from './paths.js';
import { MAX_REQUEST_BYTES } from './limits.js';
import { guardService } from './request-guard.js';

/** Who may call and over what: every call but health checks passes `auth`; `tls` set serves TLS (mTLS with a client CA). */
export interface ServerSecurity {
  readonly auth?: Authenticator;
  readonly tls?: TlsFiles;
}

/** One gRPC service to serve: its full name (for health checks), definition and handlers. */
export interface ServiceBinding {
  readonly name: string;
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

export interface RunningServer {
  /** host:port actually bound (the port is real even when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** Stops accepting calls, waits up to graceMs for calls in flight, then cuts the rest. */
  shutdown(graceMs: number): Promise<void>;
}

let reflectionDefinition: PackageDefinition | undefined;

/** The FileDescriptorProto messages of a FileDescriptorSet (field 1, repeated), as raw bytes. */
function splitDescriptorSet(set: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(set);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) files.push(reader.bytes());
    else reader.skip(wireType);
  }
  return files;
}

/**
 * Sluice's own contracts plus grpc.health.v1, so grpcurl can describe and call both. The descriptors
 * are served exactly as buf built them: going through proto-loader would drop each file's import list,
 * and clients such as grpcurl and `buf curl` then cannot link the files.
 */
function reflectionPackages(): PackageDefinition {
  if (!reflectionDefinition) {
    const files = [DESCRIPTOR_SET, HEALTH_DESCRIPTOR_SET].flatMap((f) => splitDescriptorSet(readFileSync(f)));
    reflectionDefinition = {
      'sluice.descriptors': { fileDescriptorProtos: files } as unknown as PackageDefinition[string],
    };
  }
  return reflectionDefinition;
}

/**
 * Serves the bindings plus grpc.health.v1 (overall and per service) and server reflection, so that
 * grpcurl works without .proto files.
 */
export async function startGrpcServer(
  addr: string,
  bindings: readonly ServiceBinding[],
  logger: Logger,
  security: ServerSecurity = {},
): Promise<RunningServer> {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    // Either way handlers learn the caller's role from the server, never from the caller.
    interceptors: [security.auth?.enabled ? authInterceptor(security.auth) : openInterceptor()],
  });
  for (const b of bindings) {
    // Bad requests (undecodable, past a limit) are INVALID_ARGUMENT before any handler runs.
    const guarded = guardService(b.definition, b.implementation, logger);
    server.addService(guarded.definition, guarded.implementation);
  }

  const health = new HealthImplementation({
    '': 'SERVING',
    ...Object.fromEntries(bindings.map((b) => [b.name, 'SERVING' as const])),
  });
  health.addToServer(server);

  new ReflectionService(reflectionPackages()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(addr, serverCredentials(security.tls), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const host = addr.slice(0, addr.lastIndexOf(':'));
  const address = `${host}:${port}`;
  logger.info('gRPC server listening', {
    address,
    services: bindings.map((b) => b.name),
    tls: security.tls ? (security.tls.clientCaFile ? 'mutual' : 'server') : 'off',
    auth: security.auth?.enabled ? 'on' : 'off',
  });

  return {
    address,
    port,
    async shutdown(graceMs) {
      for (const b of bindings) health.setStatus(b.name, 'NOT_SERVING');
      health.setStatus('', 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('calls still in flight after the grace period; closing them', { graceMs });
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
