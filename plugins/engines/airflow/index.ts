import {
  ERROR_CODES,
  SluiceError,
  defineEnginePlugin,
  keepReconciling,
  type Reconciling,
  type EngineContext,
  type HookContext,
  type ScheduleInfo,
} from 'sluice/sdk';
import { AirflowClient } from './client.js';
import { type DagIndex, type DagSpec, dagSpec, indexText, parseIndex, variableValue } from './dag-spec.js';
import { CONNECTION_ID, INDEX_KEY, PREFIX, dagId, groupOf } from './names.js';

/**
 * Airflow 3 is the clock. Each live schedule is stored as an Airflow Variable `sluice__<group>` (JSON:
 * the schedule and the DAG it makes), and the DAG settings of every live group are gathered in one
 * index Variable `sluice_dags`, which the DAG factory (dags/sluice_dags.py) reads once per parse to
 * build one DAG per group whose task calls FireDue. Variables, not files: they are managed through the
 * REST API, kept in Airflow's database, and need no volume shared between Sluice and Airflow's DAG
 * processor. The index exists because Airflow's Task SDK reads Variables by key only (it has no list
 * call), and one read per parse keeps the factory cheap however many groups there are.
 */
const RESOLUTION_MS = 60_000;
/** How soon a start that could not reach Airflow tries to reconcile again. */
const RECONCILE_RETRY_MS = 60_000;
/** Writes of the index by several replicas can cross; each write is read back and retried this often. */
const INDEX_ATTEMPTS = 5;

let client: AirflowClient | undefined;
let clientUrl: string | undefined;
let engineCtx: EngineContext | undefined;
let reconciling: Reconciling | undefined;
/** Groups whose Variable and index entry this process has put since its last reconcile. */
const present = new Set<string>();

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

/** The DAG settings of a schedule, from Sluice's covering cron (one tick in [due, due + 60 s) of every due time). */
function specOf(info: ScheduleInfo): DagSpec {
  if (!engineCtx)
    throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, 'the airflow engine is not started on this service');
  return dagSpec(info, engineCtx.coveringCron(info, 'unix'));
}

const INDEX_DESCRIPTION = "The DAGs Sluice's DAG factory builds, one per live group (managed by Sluice)";

/**
 * Sets (or, with undefined, removes) one group's entry of the index Variable. A read-modify-write: two
 * replicas writing at once can lose one change, so the write is read back and done again until it holds.
 */
async function setIndexEntry(c: AirflowClient, groupId: string, spec: DagSpec | undefined): Promise<void> {
  const want = spec === undefined ? undefined : JSON.stringify(spec);
  for (let attempt = 0; attempt < INDEX_ATTEMPTS; attempt++) {
    const text = await c.getVariable(INDEX_KEY);
    const index = parseIndex(text);
    const has = index.dags[groupId] === undefined ? undefined : JSON.stringify(index.dags[groupId]);
    if (has === want && text !== undefined) return;
    const dags = { ...index.dags };
    if (spec === undefined) delete dags[groupId];
    else dags[groupId] = spec;
    await c.putVariable(INDEX_KEY, indexText({ format: 1, dags }), INDEX_DESCRIPTION);
  }
  throw new SluiceError(
    ERROR_CODES.UNAVAILABLE,
    `the Airflow Variable ${INDEX_KEY} kept changing under group '${groupId}'s write; try again`,
  );
}

async function put(info: ScheduleInfo, ctx: HookContext): Promise<void> {
  const spec = specOf(info);
  const c = clientFor(ctx);
  const id = dagId(info.groupId);
  await c.putVariable(id, variableValue(info, spec), `Sluice schedule of group ${info.groupId} (managed by Sluice)`);
  try {
    await setIndexEntry(c, info.groupId, spec);
    await c.setPaused(id, false);
    present.add(info.groupId);
  } catch (err) {
    // Not half-registered: without its Variable and index entry the factory builds no DAG.
    await setIndexEntry(c, info.groupId, undefined).catch(() => undefined);
    await c.deleteVariable(id).catch(() => undefined);
    throw err;
  }
}

async function remove(groupId: string, ctx: HookContext): Promise<void> {
  const c = clientFor(ctx);
  const id = dagId(groupId);
  present.delete(groupId);
  await c.setPaused(id, true);
  // The definition first: a DAG deleted while the index lists it is rebuilt by the factory.
  await setIndexEntry(c, groupId, undefined);
  await c.deleteVariable(id);
  await c.deleteDag(id);
}

/**
 * Holds a paused group: its DAG paused (`is_paused: true`), its Variable and index entry kept so the DAG
 * stays, with its runs, and resuming only unpauses it. A DAG Airflow has not parsed yet (404) cannot be
 * paused: its ticks fire nothing while the group is paused, and the next start pauses it.
 */
async function hold(groupId: string, ctx: HookContext): Promise<void> {
  await clientFor(ctx).setPaused(dagId(groupId), true);
}

/**
 * Lets a paused group fire again: its Variable and index entry put again (the schedule may have changed
 * while paused; a lost DAG comes back), then the DAG unpaused. Unlike register, a failure removes
 * nothing: the group goes back to PAUSED and keeps its DAG.
 */
async function unhold(info: ScheduleInfo, ctx: HookContext): Promise<void> {
  const spec = specOf(info);
  const c = clientFor(ctx);
  const id = dagId(info.groupId);
  await c.putVariable(id, variableValue(info, spec), `Sluice schedule of group ${info.groupId} (managed by Sluice)`);
  await setIndexEntry(c, info.groupId, spec);
  await c.setPaused(id, false);
  present.add(info.groupId);
}

/**
 * Makes Airflow hold exactly the schedules Sluice keeps: each live or paused one's Variable put, the
 * index rewritten whole, live DAGs unpaused and paused ones paused, every other `sluice__` Variable and
 * its DAG removed. Objects without the prefix are never touched.
 */
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
  const paused = await ctx.listPaused();
  const index: DagIndex = { format: 1, dags: {} };
  for (const info of [...live, ...paused]) {
    const spec = specOf(info);
    index.dags[info.groupId] = spec;
    await c.putVariable(
      dagId(info.groupId),
      variableValue(info, spec),
      `Sluice schedule of group ${info.groupId} (managed by Sluice)`,
    );
  }
  await c.putVariable(INDEX_KEY, indexText(index), INDEX_DESCRIPTION);
  for (const info of live) await c.setPaused(dagId(info.groupId), false);
  for (const info of paused) await c.setPaused(dagId(info.groupId), true);
  present.clear();
  for (const info of [...live, ...paused]) present.add(info.groupId);
  for (const key of await c.variableKeys(PREFIX)) {
    const groupId = groupOf(key);
    if (groupId !== undefined && index.dags[groupId] === undefined) await remove(groupId, ctx);
  }
}

/** A woken live group this process has not put (a failed call, a lost Variable) is put again. */
async function restore(ctx: EngineContext, groupId: string): Promise<void> {
  const info = (await ctx.listSchedules()).find((i) => i.groupId === groupId);
  if (info && engineCtx === ctx && !present.has(groupId)) await put(info, ctx);
}

export default defineEnginePlugin({
  accept: (engineType) => engineType.toLowerCase() === 'airflow',

  // Airflow's timetables fire on the minute.
  resolutionMs: () => RESOLUTION_MS,

  /** One request: Airflow's version for ListEngines, or why it does not answer. */
  async about(ctx) {
    try {
      return { remote: `Airflow ${await clientFor(ctx).version()}` };
    } catch (err) {
      return { availability: { available: false, reason: err instanceof Error ? err.message : String(err) } };
    }
  },

  async start(ctx) {
    engineCtx = ctx;
    client = undefined;
    present.clear();
    ctx.onWake((groupId) => {
      if (engineCtx !== ctx || present.has(groupId)) return;
      restore(ctx, groupId).catch((err: unknown) =>
        ctx.logger.warn('airflow: putting a resumed schedule back failed; the next start reconciles it', {
          groupId,
          err,
        }),
      );
    });
    // Down at start: Sluice serves on, and a later attempt repairs the drift.
    reconciling = await keepReconciling(ctx, async () => (engineCtx === ctx ? reconcile(ctx) : undefined), {
      name: 'airflow',
      retryMs: RECONCILE_RETRY_MS,
    });
  },

  register: put,
  update: put,
  unregister: remove,
  pause: hold,
  resume: unhold,

  stop() {
    reconciling?.cancel();
    reconciling = undefined;
    engineCtx = undefined;
    client = undefined;
  },
});
