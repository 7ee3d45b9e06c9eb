import { readFileSync } from 'node:fs';
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer, loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Logger } from 'sluice/sdk';
import { DESCRIPTOR_SET } from './paths.js';

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

let reflectionDefinition: ReturnType<typeof loadFileDescriptorSetFromBuffer> | undefined;

/** Sluice's own contracts plus grpc.health.v1, so grpcurl can describe and call both. */
function reflectionPackages(): ReturnType<typeof loadFileDescriptorSetFromBuffer> {
  reflectionDefinition ??= { ...loadFileDescriptorSetFromBuffer(readFileSync(DESCRIPTOR_SET)), ...loadSync(healthProtoPath) };
  return reflectionDefinition;
}

/**
 * Serves the bindings plus grpc.health.v1 (overall and per service) and server reflection, so that
 * grpcurl works without .proto files.
 */
export async function startGrpcServer(addr: string, bindings: readonly ServiceBinding[], logger: Logger): Promise<RunningServer> {
  const server = new Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  for (const b of bindings) server.addService(b.definition, b.implementation);

  const health = new HealthImplementation({ '': 'SERVING', ...Object.fromEntries(bindings.map((b) => [b.name, 'SERVING' as const])) });
  health.addToServer(server);

  new ReflectionService(reflectionPackages()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const host = addr.slice(0, addr.lastIndexOf(':'));
  const address = `${host}:${port}`;
  logger.info('gRPC server listening', { address, services: bindings.map((b) => b.name) });

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
