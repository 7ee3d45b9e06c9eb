/**
 * docker-compose.yml, checked as data: there is no Docker engine here, so images are neither pulled nor
 * built and nothing is started; what the file says is checked against the code and the repository.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { DEFAULTS } from '../services/core/config.js';
import { BUNDLED_PLUGINS_DIR } from '../services/core/paths.js';
import { settingVariable } from '../services/host/settings.js';
import { ROOT } from './helpers/process.js';

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  command?: unknown;
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
/** SLUICE_PLUGIN_<ID>_<SETTING> of every setting a bundled plugin declares in its plugin.json. */
const PLUGIN_SETTINGS = new Set(
  readdirSync(BUNDLED_PLUGINS_DIR, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('plugin.json'))
    .flatMap((f) => {
      const m = JSON.parse(readFileSync(join(BUNDLED_PLUGINS_DIR, f), 'utf8')) as {
        id: string;
        settings?: { properties?: Record<string, unknown> };
      };
      return Object.keys(m.settings?.properties ?? {}).map((k) => settingVariable(m.id, k));
    }),
);
const SLUICE = ['catalog', 'schedule', 'operator'];
/** The OTEL_* variables Sluice's telemetry reads (services/telemetry/) or the SDK reads by its spec. */
const OTEL = new Set([
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
  'OTEL_TRACES_EXPORTER',
  'OTEL_METRICS_EXPORTER',
  'OTEL_METRIC_EXPORT_INTERVAL',
  'OTEL_SERVICE_NAME',
  'OTEL_SDK_DISABLED',
]);

test('the stack has the services, the store, Kafka, Jaeger, Prometheus and Flink; Pulsar and the engines are profiles', (t) => {
  for (const name of [
    ...SLUICE,
    'postgres',
    'kafka',
    'jaeger',
    'prometheus',
    'flink-jobmanager',
    'flink-taskmanager',
    'flink-sql-gateway',
  ])
    t.truthy(services[name], name);
  t.is(services.kafka!.environment!.KAFKA_PROCESS_ROLES, 'broker,controller', 'Kafka runs in KRaft mode');
  t.deepEqual(services.pulsar!.profiles, ['pulsar']);
  t.deepEqual(services.airflow!.profiles, ['airflow', 'engines']);
  t.deepEqual(services.dolphinscheduler!.profiles, ['engines', 'dolphinscheduler']);
});

test('every published port is on loopback, and no host port is published twice', (t) => {
  const seen = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    for (const p of s.ports ?? []) {
      t.regex(p, /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${p}`);
      const host = p.split(':')[1]!;
      t.false(seen.has(host), `${name} and ${seen.get(host)} both publish ${host}`);
      seen.set(host, name);
    }
  }
});

/** SLUICE_PLUGIN_<ID>_<SETTING> of every bundled plugin's declared settings. */
test('every SLUICE_* variable is one the code or a bundled plugin reads, and every OTEL_* one the telemetry reads', (t) => {
  for (const [name, s] of Object.entries(services)) {
    for (const key of Object.keys(s.environment ?? {})) {
      if (key.startsWith('SLUICE_') && SLUICE.includes(name))
        t.true(key in DEFAULTS || PLUGIN_SETTINGS.has(key), `${name}: ${key}`);
      if (key.startsWith('OTEL_')) t.true(OTEL.has(key), `${name}: ${key}`);
    }
  }
});

test('addresses between services name a service and the port it listens on', (t) => {
  const grpcPort = (svc: string) => String(services[svc]!.environment!.SLUICE_GRPC_ADDR).split(':')[1];
  for (const name of SLUICE) {
    const env = services[name]!.environment!;
    for (const key of ['SLUICE_OPERATOR_ADDR', 'SLUICE_SCHEDULE_ADDR']) {
      const [host, port] = String(env[key]).split(':');
      t.truthy(services[host!], `${name}: ${key} names ${host}`);
      t.is(port, grpcPort(host!), `${name}: ${key}`);
    }
    t.regex(String(env.SLUICE_DATABASE_URL), /@postgres:5432\//);
    t.is(String(env.OTEL_EXPORTER_OTLP_ENDPOINT), 'http://jaeger:4318');
  }
  const op = services.operator!.environment!;
  t.is(op.SLUICE_FLINK_REST_URL, 'http://flink-jobmanager:8081');
  t.regex(String(op.SLUICE_FLINK_GATEWAY_URL), /^http:\/\/flink-sql-gateway:8083$/);
  t.true((services['flink-sql-gateway']!.healthcheck!.test as string[]).join(' ').includes(':8083/'));
  // Prometheus scrapes each service where SLUICE_METRICS_ADDR listens.
  const prometheus = readFileSync(join(ROOT, 'deploy/prometheus.yml'), 'utf8');
  for (const name of SLUICE) {
    const port = String(services[name]!.environment!.SLUICE_METRICS_ADDR).split(':')[1];
    t.true(prometheus.includes(`'${name}:${port}'`), `prometheus.yml scrapes ${name}:${port}`);
  }
});

test('every mounted file or folder exists, and every dependency it waits healthy on has a health check', (t) => {
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (source.startsWith('.')) t.true(existsSync(join(ROOT, source)), `${name}: ${source}`);
    }
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      t.truthy(services[dep], `${name} depends on ${dep}`);
      if (condition === 'service_healthy') t.truthy(services[dep]!.healthcheck, `${dep} has a health check`);
      // A service of the default stack cannot wait on one that only a profile starts.
      if (!s.profiles) t.falsy(services[dep]!.profiles, `${name} waits on ${dep}, which only a profile starts`);
    }
  }
  for (const name of SLUICE) {
    t.truthy(services[name]!.healthcheck);
    t.is(services[name]!.depends_on!.postgres!.condition, 'service_healthy');
  }
  t.true(JSON.parse(readFileSync(join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8')).panels.length > 0);
});

test('the airflow profile runs Airflow 3 standalone with the DAG factory in its DAGs folder, and Sluice reaches it', (t) => {
  const a = services.airflow!;
  t.regex(a.image ?? '', /^apache\/airflow:3\./);
  t.regex(JSON.stringify(a.command), /airflow standalone/);
  t.true(
    (a.volumes ?? []).includes('./plugins/engines/airflow/dags/sluice_dags.py:/opt/airflow/dags/sluice_dags.py:ro'),
  );
  const env = services.schedule!.environment!;
  t.is(env.SLUICE_PLUGIN_AIRFLOW_USERNAME, 'sluice');
  t.is(a.environment!.AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS, 'sluice:admin');
  // The DAGs call FireDue on the operator's HTTP server.
  const http = String(services.operator!.environment!.SLUICE_HTTP_ADDR).split(':')[1];
  t.is(env.SLUICE_PUBLIC_HTTP_URL, `http://operator:${http}`);
});
