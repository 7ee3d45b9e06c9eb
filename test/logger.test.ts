import { SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import test from 'ava';
import { ERROR_CODES } from 'sluice/sdk';
import { createLogger, registerSecretOptions } from '../services/core/logger.js';
import { HookRunner } from '../services/host/hook-runner.js';
import type { LoadedPlugin } from '../services/host/loader.js';
import { startTelemetry } from '../services/telemetry/sdk.js';

const exporter = new InMemorySpanExporter();
startTelemetry({ exporter, serviceName: 'sluice-logger-test', simple: true });

function capture(level: 'debug' | 'info' = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, { service: 'test' }, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  return { logger, lines };
}

test('a line inside a span carries its trace and span ids; a line outside carries none', (t) => {
  const { logger, lines } = capture();
  logger.info('outside');
  trace.getTracer('test').startActiveSpan('job', (span) => {
    logger.info('inside', { n: 1 });
    span.end();
    const ctx = span.spanContext();
    t.like(lines[1], {
      msg: 'inside',
      level: 'info',
      service: 'test',
      n: 1,
      trace_id: ctx.traceId,
      span_id: ctx.spanId,
    });
    t.is(lines[1]!.trace_flags, '01');
  });
  t.like(lines[0], { msg: 'outside', level: 'info' });
  t.false('trace_id' in lines[0]!);
  t.regex(lines[0]!.time as string, /^\d{4}-\d\d-\d\dT/);
});

test('levels below SLUICE_LOG_LEVEL are dropped', (t) => {
  const { logger, lines } = capture('info');
  logger.debug('quiet');
  logger.warn('loud');
  t.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [['warn', 'loud']],
  );
});

test('secret options, writeOnly-marked options and URL passwords are redacted', (t) => {
  registerSecretOptions({ type: 'object', properties: { 'sasl.jaas': { type: 'string', writeOnly: true } } });
  const { logger, lines } = capture();
  logger.info('group', {
    options: { host: 'db', password: 'hunter2', 'sasl.jaas': 'k=v', nested: [{ token: 't0k' }] },
    url: 'postgres://sluice:s3cret@db:5432/x',
  });
  const line = JSON.stringify(lines[0]);
  for (const secret of ['hunter2', 'k=v', 't0k', 's3cret']) t.false(line.includes(secret), secret);
  t.like(lines[0], {
    options: { host: 'db', password: '[REDACTED]', 'sasl.jaas': '[REDACTED]' },
    url: 'postgres://sluice:***@db:5432/x',
  });
});

test('BigInts, cycles, an error cause and details are written, not thrown', (t) => {
  const { logger, lines } = capture();
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const err = Object.assign(new Error('outer', { cause: new Error('inner') }), { code: 'X', details: { k: 1 } });
  t.notThrows(() => logger.error('odd', { big: 2n ** 64n, cyclic, err }));
  const line = lines[0]!;
  t.is(line.big, 18446744073709551616);
  t.like(line.err, { message: 'outer: inner', code: 'X', details: { k: 1 } });
  t.regex(JSON.stringify(line.err), /inner/);
});

function plugin(thrown: () => unknown): LoadedPlugin<{ run(): Promise<void> }> {
  return {
    id: 'thrower',
    kind: 'connector',
    manifest: { id: 'thrower', kind: 'connector', apiVersion: 1, version: '1.0.0', description: 'throws' },
    dir: '/x',
    plugin: {
      run: () => Promise.reject(thrown()),
    },
  } as unknown as LoadedPlugin<{ run(): Promise<void> }>;
}

for (const [name, thrown] of [
  [
    'a cyclic object',
    () => {
      const o: Record<string, unknown> = { reason: 'loop' };
      o.self = o;
      return o;
    },
  ],
  ['a BigInt', () => 12345678901234567890n],
] as const) {
  test.serial(
    `a plugin throwing ${name} surfaces as PLUGIN_FAILED and the log line is written with the hook's trace`,
    async (t) => {
      const { logger, lines } = capture();
      exporter.reset();
      const runner = new HookRunner({ logger });
      const err = await t.throwsAsync(runner.call(plugin(thrown), 'run', undefined), {
        code: ERROR_CODES.PLUGIN_FAILED,
      });
      t.regex(err.message, /plugin 'thrower' hook 'run' failed/);
      const line = lines.find((l) => l.msg === 'plugin hook failed');
      t.truthy(line);
      t.like(line, { level: 'error', pluginId: 'thrower', hook: 'run' });
      const span = exporter.getFinishedSpans().find((s) => s.name === 'plugin thrower.run')!;
      t.is(span.status.code, SpanStatusCode.ERROR);
      t.is(line!.trace_id, span.spanContext().traceId);
    },
  );
}
