import { defineEnginePlugin, type EngineContext, type HookContext, type ScheduleInfo } from 'sluice/sdk';
import { AirflowClient } from './client.js';
import { CONNECTION_ID, PREFIX, dagId, groupOf } from './names.js';

/**
 * Airflow 3 is the clock. Each live schedule is stored as an Airflow Variable `sluice__<group>` (JSON);
 * the DAG factory (dags/) turns each such Variable into a DAG of the same id whose task calls FireDue.
 * A Variable, not a file: it is managed through the REST API, versioned by Airflow's database, and needs
 * no shared volume between Sluice and Airflow's DAG processor.
 */
const RESOLUTION_MS = 60_000;
/** How soon a start that could not reach Airflow tries to reconcile again. */
const RECONCILE_RETRY_MS = 60_000;

let client: AirflowClient | undefined;
let clientUrl: string | undefined;
let engineCtx: EngineContext | undefined;
let retry: { cancel(): void } | undefined;

function clientFor(ctx: HookContext): AirflowClient {
  const s = ctx.settings as { url?: string; username?: string; password?: string };
  if (!client || clientUrl !== s.url) {
    client = new AirflowClient({
      url: s.url ?? '',
      username: s.username,
      password: s.password,
      ...(engineCtx ? { now: engineCtx.now } : {}),
    });
    clientUrl = s.url;
  }
  return client;
}

/** What the DAG factory reads: the schedule as Sluice stores it (epoch ms, IANA zone). */
export function variableValue(info: ScheduleInfo): string {
  return JSON.stringify({ format: 1, dagId: dagId(info.groupId), schedule: info });
}

async function put(info: ScheduleInfo, ctx: HookContext): Promise<void> {
  const c = clientFor(ctx);
  const id = dagId(info.groupId);
  await c.putVariable(id, variableValue(info), `Sluice schedule of group ${info.groupId} (managed by Sluice)`);
  try {
    await c.setPaused(id, false);
  } catch (err) {
    // Not half-registered: without its Variable the factory builds no DAG.
    await c.deleteVariable(id).catch(() => undefined);
    throw err;
  }
}

async function remove(groupId: string, ctx: HookContext): Promise<void> {
  const c = clientFor(ctx);
  const id = dagId(groupId);
  await c.setPaused(id, true);
  // The Variable first: a DAG deleted while its Variable lives is rebuilt by the factory.
  await c.deleteVariable(id);
  await c.deleteDag(id);
}

/** Makes Airflow hold exactly the live schedules: each one put, every other `sluice__` Variable removed. */
async function reconcile(ctx: EngineContext): Promise<void> {
  const c = clientFor(ctx);
  const version = await c.version();
  ctx.logger.info('airflow: connected', { airflowVersion: version });
  const s = ctx.settings as { callbackToken?: string };
  const publicUrl = process.env.SLUICE_PUBLIC_HTTP_URL ?? '';
  if (s.callbackToken !== undefined) {
    await c.putConnection({
      connection_id: CONNECTION_ID,
      conn_type: 'http',
      host: publicUrl,
      password: s.callbackToken,
      description: "Sluice's HTTP server and the token its DAGs call FireDue with (managed by Sluice)",
    });
  }
  const live = await ctx.listSchedules();
  const liveIds = new Set(live.map((i) => i.groupId));
  for (const info of live) await put(info, ctx);
  for (const key of await c.variableKeys(PREFIX)) {
    const groupId = groupOf(key);
    if (groupId !== undefined && !liveIds.has(groupId)) await remove(groupId, ctx);
  }
}

function reconcileSoon(ctx: EngineContext): void {
  retry = ctx.scheduleAt(ctx.now() + RECONCILE_RETRY_MS, () => {
    retry = undefined;
    if (engineCtx !== ctx) return;
    reconcile(ctx).catch((err: unknown) => {
      ctx.logger.warn('airflow: reconcile failed; trying again', { err });
      if (engineCtx === ctx) reconcileSoon(ctx);
    });
  });
}

export default defineEnginePlugin({
  accept: (engineType) => engineType.toLowerCase() === 'airflow',

  // Airflow's timetables fire on the minute.
  resolutionMs: () => RESOLUTION_MS,

  async start(ctx) {
    engineCtx = ctx;
    client = undefined;
    try {
      await reconcile(ctx);
    } catch (err) {
      // Airflow down at start: Sluice serves on, and a later attempt repairs the drift.
      ctx.logger.warn('airflow: reconcile at start failed; trying again', { err });
      reconcileSoon(ctx);
    }
  },

  register: put,
  update: put,
  unregister: remove,

  stop() {
    retry?.cancel();
    retry = undefined;
    engineCtx = undefined;
    client = undefined;
  },
});
