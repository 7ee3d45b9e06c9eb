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
import { DsClient, type DsVersion } from './client.js';
import { PREFIX, groupOf, workflowName } from './names.js';
import { scheduleParam, workflowForm } from './workflow.js';

/**
 * DolphinScheduler is the clock: one workflow `sluice__<group>` per live schedule, with one HTTP task
 * that POSTs FireDue with the run's schedule time, on a schedule whose Quartz cron covers every due
 * time. Sluice decides which windows are due; DolphinScheduler only says when.
 */
const RESOLUTION_MS = 1000;
const RECONCILE_RETRY_MS = 60_000;

interface Settings {
  readonly url?: string;
  readonly token?: string;
  readonly project?: string;
  readonly version?: 'auto' | DsVersion;
  readonly callbackToken?: string;
}

let client: DsClient | undefined;
let clientKey: string | undefined;
let engineCtx: EngineContext | undefined;
let reconciling: Reconciling | undefined;

function settingsOf(ctx: HookContext): Settings {
  return ctx.settings as Settings;
}

function clientFor(ctx: HookContext): DsClient {
  const s = settingsOf(ctx);
  // Any setting changed (a rotated token too) makes a new client.
  const key = JSON.stringify([s.url, s.token, s.version ?? 'auto']);
  if (!client || clientKey !== key) {
    client = new DsClient(s.url ?? '', s.token, s.version ?? 'auto');
    clientKey = key;
  }
  return client;
}

/** The project's code (created when missing) and the API generation (detected once per client). */
async function target(ctx: HookContext): Promise<{ c: DsClient; pc: number; version: DsVersion }> {
  const c = clientFor(ctx);
  const version = await c.version();
  const pc = await c.project(settingsOf(ctx).project ?? 'sluice');
  return { c, pc, version };
}

/**
 * Creates or updates the group's workflow and schedule in place (same workflow code, task code and
 * schedule id), then brings both online. A workflow this call created is removed again when a later
 * step fails: nothing is left half-registered.
 */
async function put(info: ScheduleInfo, ctx: HookContext): Promise<void> {
  if (!engineCtx)
    throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, 'the DolphinScheduler engine has not been started');
  const cc = engineCtx.coveringCron(info, 'quartz');
  const { c, pc } = await target(ctx);
  const s = settingsOf(ctx);
  const publicUrl = process.env.SLUICE_PUBLIC_HTTP_URL ?? '';
  const name = workflowName(info.groupId);
  const existing = (await c.workflows(pc, name)).find((w) => w.name === name);
  const schedule = scheduleParam(cc);
  if (existing) {
    const current = await c.scheduleOf(pc, existing.code);
    // DolphinScheduler refuses to edit what is online: offline, edit, online again.
    if (current?.releaseState === 'ONLINE') await c.scheduleState(pc, current.id, 'offline');
    if (existing.releaseState === 'ONLINE') await c.release(pc, existing.code, 'OFFLINE');
    const taskCode = await existingTaskCode(c, pc, existing.code);
    await c.updateWorkflow(pc, existing.code, workflowForm(info, taskCode, publicUrl, s.callbackToken));
    await c.release(pc, existing.code, 'ONLINE');
    const id = current ? current.id : await c.createSchedule(pc, existing.code, schedule);
    if (current) await c.updateSchedule(pc, id, schedule);
    await c.scheduleState(pc, id, 'online');
    return;
  }
  const taskCode = await c.taskCode(pc);
  const code = await c.createWorkflow(pc, workflowForm(info, taskCode, publicUrl, s.callbackToken));
  try {
    await c.release(pc, code, 'ONLINE');
    const id = await c.createSchedule(pc, code, schedule);
    await c.scheduleState(pc, id, 'online');
  } catch (err) {
    await c
      .release(pc, code, 'OFFLINE')
      .then(() => c.deleteWorkflow(pc, code))
      .catch(() => undefined);
    throw err;
  }
}

/** The task code a workflow already has, so an update keeps it. */
async function existingTaskCode(c: DsClient, pc: number, code: number): Promise<number> {
  return (await c.taskCodeOf(pc, code)) ?? (await c.taskCode(pc));
}

/** Takes the group's workflow offline (its schedule with it) and deletes that workflow only. */
async function remove(groupId: string, ctx: HookContext): Promise<void> {
  const { c, pc } = await target(ctx);
  const name = workflowName(groupId);
  const existing = (await c.workflows(pc, name)).find((w) => w.name === name);
  if (!existing) return;
  const current = await c.scheduleOf(pc, existing.code);
  if (current) await c.scheduleState(pc, current.id, 'offline');
  await c.release(pc, existing.code, 'OFFLINE');
  await c.deleteWorkflow(pc, existing.code);
}

/**
 * Holds a paused group: its schedule and then its workflow taken offline (DolphinScheduler's order: a
 * workflow goes offline with its schedule), both kept with their codes so resuming changes nothing
 * else. A group without a workflow has nothing to hold.
 */
async function hold(groupId: string, ctx: HookContext): Promise<void> {
  const { c, pc } = await target(ctx);
  const name = workflowName(groupId);
  const existing = (await c.workflows(pc, name)).find((w) => w.name === name);
  if (!existing) return;
  const current = await c.scheduleOf(pc, existing.code);
  if (current?.releaseState === 'ONLINE') await c.scheduleState(pc, current.id, 'offline');
  if (existing.releaseState === 'ONLINE') await c.release(pc, existing.code, 'OFFLINE');
}

/**
 * DolphinScheduler holds exactly the schedules Sluice keeps: each live one put and online, each paused one
 * put and held offline, every other `sluice__` workflow removed.
 */
async function reconcile(ctx: EngineContext): Promise<void> {
  const { c, pc, version } = await target(ctx);
  ctx.logger.info('dolphinscheduler: connected', { dolphinschedulerVersion: version });
  const live = await ctx.listSchedules();
  const paused = await ctx.listPaused();
  const keep = new Set([...live, ...paused].map((i) => i.groupId));
  for (const info of live) await put(info, ctx);
  for (const info of paused) {
    // A paused group's workflow stays; one lost is created (put) before it is held offline.
    const name = workflowName(info.groupId);
    if (!(await c.workflows(pc, name)).some((w) => w.name === name)) await put(info, ctx);
    await hold(info.groupId, ctx);
  }
  for (const w of await c.workflows(pc, PREFIX)) {
    const groupId = groupOf(w.name);
    if (groupId !== undefined && !keep.has(groupId)) await remove(groupId, ctx);
  }
}

/**
 * A wake-up for a live group whose workflow is missing or not online: put it. Resume brings a group
 * online itself; this repairs what a failed call or a lost workflow left behind.
 */
async function ensureLive(ctx: EngineContext, groupId: string): Promise<void> {
  const info = (await ctx.listSchedules()).find((i) => i.groupId === groupId);
  if (!info) return;
  const { c, pc } = await target(ctx);
  const name = workflowName(groupId);
  const wf = (await c.workflows(pc, name)).find((w) => w.name === name);
  const schedule = wf && wf.releaseState === 'ONLINE' ? await c.scheduleOf(pc, wf.code) : undefined;
  if (schedule?.releaseState !== 'ONLINE') await put(info, ctx);
}

export default defineEnginePlugin({
  accept: (engineType) => engineType.toLowerCase() === 'dolphinscheduler',

  // Quartz ticks on whole seconds.
  resolutionMs: () => RESOLUTION_MS,

  // One live request: which generation answers (an unreachable server throws: listed unavailable).
  async about(ctx) {
    const detected = await clientFor(ctx).detectVersion();
    const configured = settingsOf(ctx).version ?? 'auto';
    const note = configured !== 'auto' && configured !== detected ? ` (configured as ${configured})` : '';
    return { remote: `DolphinScheduler ${detected}${note}` };
  },

  async start(ctx) {
    engineCtx = ctx;
    client = undefined;
    ctx.onWake((groupId) => {
      if (engineCtx !== ctx) return;
      ensureLive(ctx, groupId).catch((err: unknown) =>
        ctx.logger.warn('dolphinscheduler: bringing a woken group online failed', { groupId, err }),
      );
    });
    // Down at start: Sluice serves on, and a later attempt repairs the drift.
    reconciling = await keepReconciling(ctx, async () => (engineCtx === ctx ? reconcile(ctx) : undefined), {
      name: 'dolphinscheduler',
      retryMs: RECONCILE_RETRY_MS,
    });
  },

  register: put,
  update: put,
  unregister: remove,
  pause: hold,
  // Online again with the same codes; a workflow lost while paused is created again.
  resume: put,

  // Stop deletes nothing: the project and every workflow stay as they are.
  stop() {
    reconciling?.cancel();
    reconciling = undefined;
    engineCtx = undefined;
    client = undefined;
  },
});
