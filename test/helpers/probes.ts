import { createRequire } from 'node:module';
import {
  credentials,
  Metadata,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type GrpcObject,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';

const require = createRequire(import.meta.url);

/** grpc.health.v1.Health/Check for one service name ('' is the whole server). */
export function healthCheck(address: string, service: string): Promise<string> {
  const Client = makeGenericClientConstructor(healthService, 'Health');
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (
      client as unknown as { check: (req: unknown, cb: (err: Error | null, res: { status: string }) => void) => void }
    ).check({ service }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res.status);
    });
  });
}

/** The service names server reflection (grpc.reflection.v1) lists, as grpcurl `list` would show them. */
export function reflectionServices(address: string, metadata = new Metadata()): Promise<string[]> {
  const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const pkg = loadPackageDefinition(loadSync(protoPath, { keepCase: false, longs: String })) as GrpcObject;
  const Ctor = ((pkg.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject;
  const Client = Ctor.ServerReflection as ServiceClientConstructor;
  const client = new Client(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = (
      client as unknown as {
        serverReflectionInfo: (md: Metadata) => NodeJS.ReadWriteStream & { write(m: unknown): void };
      }
    ).serverReflectionInfo(metadata);
    stream.on('data', (msg: { listServicesResponse?: { service: { name: string }[] } }) => {
      resolve((msg.listServicesResponse?.service ?? []).map((s) => s.name).sort());
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write({ listServices: '' });
  });
}
