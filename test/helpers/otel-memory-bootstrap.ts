/**
 * Test-only `--import` bootstrap: like services/telemetry/bootstrap.ts, but it always traces and keeps the
 * finished spans in memory. The loader hook is registered first and the SDK (which pulls in the gRPC
 * instrumentation) is imported only afterwards, so grpc-js is patched when the scenario loads it.
 * The exporter is exposed on globalThis under MEMORY_EXPORTER_KEY.
 */
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

// Job worker threads inherit this --import: as in production, only the main thread sets tracing up.
if (isMainThread) {
  // Only grpc-js needs wrapping, as in the production bootstrap.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: ['@grpc/grpc-js'] } });

  const { InMemorySpanExporter } = await import('@opentelemetry/sdk-trace');
  const { startTelemetry } = await import('../../services/telemetry/sdk.js');
  const { MEMORY_EXPORTER_KEY } = await import('./trace-protocol.js');

  const exporter = new InMemorySpanExporter();
  startTelemetry({ exporter, serviceName: 'sluice-test', simple: true });
  (globalThis as Record<symbol, unknown>)[MEMORY_EXPORTER_KEY] = exporter;
}
