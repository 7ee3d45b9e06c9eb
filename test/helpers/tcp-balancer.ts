import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/**
 * One address in front of several servers, as a load balancer puts it before operator replicas: each new
 * connection goes to the next target in turn, and to the one after when that one refuses (it is down).
 */
export interface TcpBalancer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startTcpBalancer(targets: readonly { host: string; port: number }[]): Promise<TcpBalancer> {
  const sockets = new Set<Socket>();
  let next = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server: Server = createServer((client) => {
    track(client);
    client.pause();
    const tryTarget = (left: number) => {
      if (left === 0 || client.destroyed) return client.destroy();
      const target = targets[next++ % targets.length]!;
      const upstream = connect(target.port, target.host);
      track(upstream);
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => {});
        client.pipe(upstream).pipe(client);
        client.resume();
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      upstream.once('error', () => {
        upstream.destroy();
        tryTarget(left - 1);
      });
    };
    tryTarget(targets.length);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
