import { invalidArgument, type Logger, type ScheduleInfo } from 'sluice/sdk';
import {
  BackfillMode,
  CatchUpMode,
  InstanceState as PbInstanceState,
  InstanceTrigger as PbTrigger,
  ScheduleServiceService,
  ScheduleStatus as PbStatus,
  WindowAlignment,
  type Instance,
  type Schedule,
  type ScheduleInfo as PbScheduleInfo,
  type ScheduleServiceServer,
  type Window as PbWindow,
} from '../../../proto/gen/sluice/schedule/v1/schedule.js';
import { checkPageSize, decodePageToken, encodePageToken } from '../../core/paging.js';
import { callSignal, decodeBoundaries, encodeBoundaries, unary } from '../../core/grpc-adapter.js';
import type { Clock } from '../domain/clock.js';
import type { InstanceRecord, InstanceState, ScheduleRecord, ScheduleStatus } from '../domain/model.js';
import type { PlannedWindow } from '../domain/plan.js';
import type { ScheduleService } from '../domain/service.js';
import { MAX_TIME_MS } from '../domain/windows.js';
import { formatLocal } from '../domain/zoned-time.js';

const CATCH_UP: Record<number, 'ALL' | 'LATEST' | 'NONE'> = {
  [CatchUpMode.CATCH_UP_MODE_UNSPECIFIED]: 'ALL',
  [CatchUpMode.CATCH_UP_MODE_ALL]: 'ALL',
  [CatchUpMode.CATCH_UP_MODE_LATEST]: 'LATEST',
  [CatchUpMode.CATCH_UP_MODE_NONE]: 'NONE',
};
const STATUS_TO_PB: Record<ScheduleStatus, PbStatus> = {
  NEW: PbStatus.SCHEDULE_STATUS_NEW,
  APPROVED: PbStatus.SCHEDULE_STATUS_APPROVED,
  REGISTERED: PbStatus.SCHEDULE_STATUS_REGISTERED,
  UPDATED: PbStatus.SCHEDULE_STATUS_UPDATED,
  PAUSED: PbStatus.SCHEDULE_STATUS_PAUSED,
  DELETED: PbStatus.SCHEDULE_STATUS_DELETED,
};
const STATE_TO_PB: Record<InstanceState, PbInstanceState> = {
  SCHEDULED: PbInstanceState.INSTANCE_STATE_SCHEDULED,
  DISPATCHED: PbInstanceState.INSTANCE_STATE_DISPATCHED,
  RUNNING: PbInstanceState.INSTANCE_STATE_RUNNING,
  SUCCEEDED: PbInstanceState.INSTANCE_STATE_SUCCEEDED,
  FAILED: PbInstanceState.INSTANCE_STATE_FAILED,
  SKIPPED: PbInstanceState.INSTANCE_STATE_SKIPPED,
};
const invert = <K extends string, V extends number>(m: Record<K, V>) =>
  new Map<number, K>(Object.entries(m).map(([k, v]) => [v as number, k as K]));
const STATUS_FROM_PB = invert(STATUS_TO_PB);
const STATE_FROM_PB = invert(STATE_TO_PB);
const TRIGGER_TO_PB = {
  SCHEDULE: PbTrigger.INSTANCE_TRIGGER_SCHEDULE,
  CATCH_UP: PbTrigger.INSTANCE_TRIGGER_CATCH_UP,
  MANUAL: PbTrigger.INSTANCE_TRIGGER_MANUAL,
  BACKFILL: PbTrigger.INSTANCE_TRIGGER_BACKFILL,
  EXTERNAL: PbTrigger.INSTANCE_TRIGGER_EXTERNAL,
} as const;

/** Proto ScheduleInfo → the SDK's; enum values outside the contract are INVALID_ARGUMENT. */
export function decodeInfo(pb: PbScheduleInfo | undefined): ScheduleInfo {
  if (!pb) throw invalidArgument('info', 'a ScheduleInfo', undefined);
  const mode = CATCH_UP[pb.catchUp?.mode ?? 0];
  if (!mode) throw invalidArgument('info.catch_up.mode', 'CATCH_UP_MODE_ALL, _LATEST or _NONE', pb.catchUp?.mode);
  if (
    ![
      WindowAlignment.WINDOW_ALIGNMENT_UNSPECIFIED,
      WindowAlignment.WINDOW_ALIGNMENT_END,
      WindowAlignment.WINDOW_ALIGNMENT_START,
    ].includes(pb.alignment)
  ) {
    throw invalidArgument('info.alignment', 'WINDOW_ALIGNMENT_END or WINDOW_ALIGNMENT_START', pb.alignment);
  }
  return {
    groupId: pb.groupId,
    scheduleType: pb.scheduleType,
    scheduleUnit: pb.scheduleUnit,
    scheduleInterval: pb.scheduleInterval,
    startTime: pb.startTime,
    endTime: pb.endTime,
    delayTime: pb.delayTime,
    selfDepend: pb.selfDepend,
    taskParallelism: pb.taskParallelism,
    crontabExpression: pb.crontabExpression,
    scheduleEngine: pb.scheduleEngine,
    version: pb.version,
    timeZone: pb.timeZone,
    catchUp: { mode, windowMs: pb.catchUp?.windowMs ?? 0 },
    alignment: pb.alignment === WindowAlignment.WINDOW_ALIGNMENT_START ? 'START' : 'END',
  };
}

export function encodeInfo(info: ScheduleInfo, version: number): PbScheduleInfo {
  const catchUpMode = {
    ALL: CatchUpMode.CATCH_UP_MODE_ALL,
    LATEST: CatchUpMode.CATCH_UP_MODE_LATEST,
    NONE: CatchUpMode.CATCH_UP_MODE_NONE,
  }[info.catchUp.mode];
  return {
    ...info,
    version,
    catchUp: { mode: catchUpMode, windowMs: info.catchUp.windowMs },
    alignment:
      info.alignment === 'START' ? WindowAlignment.WINDOW_ALIGNMENT_START : WindowAlignment.WINDOW_ALIGNMENT_END,
  };
}

function encodeSchedule(s: ScheduleRecord): Schedule {
  return {
    info: encodeInfo(s.info, s.version),
    status: STATUS_TO_PB[s.status],
    engineId: s.engineId,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}

function encodeWindow(w: { start: number; end: number; dueTime: number }, zone: string): PbWindow {
  return {
    start: w.start,
    end: w.end,
    dueTime: w.dueTime,
    startLocal: formatLocal(w.start, zone),
    endLocal: formatLocal(w.end, zone),
    dueLocal: formatLocal(w.dueTime, zone),
  };
}

export function encodeInstance(i: InstanceRecord, zone: string): Instance {
  return {
    instanceId: i.instanceId,
    groupId: i.groupId,
    // An OFFSET window has no window times (its row's start is a key): its bounds say what it reads.
    window: i.boundaries
      ? undefined
      : encodeWindow({ start: i.windowStart, end: i.windowEnd, dueTime: i.dueTime }, zone),
    state: STATE_TO_PB[i.state],
    trigger: TRIGGER_TO_PB[i.trigger],
    jobIds: [...i.jobIds],
    attempt: i.attempt,
    dispatchedAt: i.dispatchedAt ?? 0,
    finishedAt: i.finishedAt ?? 0,
    error: i.error ?? '',
    boundaries: encodeBoundaries(
      i.boundaries ?? { boundaryType: 'TIME', lowerBound: String(i.windowStart), upperBound: String(i.windowEnd) },
    ),
    triggeredBy: i.triggeredBy ?? '',
  };
}

function decodeEnums<T>(values: readonly number[], map: Map<number, T>, field: string): T[] | undefined {
  if (values.length === 0) return undefined;
  return values.map((v) => {
    const d = map.get(v);
    if (d === undefined) throw invalidArgument(field, `known values (${[...map.values()].join(', ')})`, v);
    return d;
  });
}

/** A time a request gives (epoch ms) within JavaScript's date range, ±MAX_TIME_MS; INVALID_ARGUMENT names the field. */
function checkTime(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || Math.abs(value) > MAX_TIME_MS)
    throw invalidArgument(field, `epoch milliseconds within ±${MAX_TIME_MS} (the JavaScript date range)`, value);
  return value;
}

/** A ListInstances page token: the window start (epoch ms, an integer) of the last instance of the page before. */
function decodeInstanceToken(pageToken: string): number | undefined {
  const token = decodePageToken(pageToken);
  if (token === undefined) return undefined;
  const windowStart = /^-?\d{1,16}$/.test(token) ? Number(token) : Number.NaN;
  if (!Number.isSafeInteger(windowStart))
    throw invalidArgument('page_token', 'a token returned by a previous ListInstances call', pageToken);
  return windowStart;
}

/** The ScheduleService gRPC adapter: decode, call one use case, encode. */
export function scheduleGrpc(
  service: ScheduleService,
  clock: Clock,
  logger: Logger,
): { definition: typeof ScheduleServiceService; implementation: ScheduleServiceServer } {
  const zoneOf = async (groupId: string) => (await service.get(groupId).catch(() => undefined))?.info.timeZone ?? 'UTC';
  const implementation: ScheduleServiceServer = {
    registerSchedule: unary(logger, 'RegisterSchedule', async (req) => ({
      schedule: encodeSchedule(await service.register(decodeInfo(req.info))),
    })),
    updateSchedule: unary(logger, 'UpdateSchedule', async (req) => ({
      schedule: encodeSchedule(await service.update(decodeInfo(req.info))),
    })),
    unregisterSchedule: unary(logger, 'UnregisterSchedule', async (req) => ({
      schedule: encodeSchedule(await service.unregister(req.groupId)),
    })),
    getSchedule: unary(logger, 'GetSchedule', async (req) => ({
      schedule: encodeSchedule(await service.get(req.groupId)),
    })),
    listSchedules: unary(logger, 'ListSchedules', async (req) => {
      const limit = checkPageSize(req.pageSize);
      const after = decodePageToken(req.pageToken);
      const statuses = decodeEnums(req.statuses, STATUS_FROM_PB, 'statuses');
      const rows = await service.list({
        limit: limit + 1,
        ...(after ? { afterGroupId: after } : {}),
        ...(statuses ? { statuses } : {}),
      });
      const page = rows.slice(0, limit);
      return {
        schedules: page.map(encodeSchedule),
        nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.groupId) : '',
      };
    }),
    pauseSchedule: unary(logger, 'PauseSchedule', async (req) => ({
      schedule: encodeSchedule(await service.pause(req.groupId)),
    })),
    resumeSchedule: unary(logger, 'ResumeSchedule', async (req) => ({
      schedule: encodeSchedule(await service.resume(req.groupId)),
    })),
    previewWindows: unary(logger, 'PreviewWindows', async (req) => {
      const source = req.groupId !== '' ? { groupId: req.groupId } : { info: decodeInfo(req.info) };
      const { rules, windows } = await service.preview(
        source,
        checkTime(req.fromTime, 'from_time') > 0 ? req.fromTime : clock.now(),
        req.count,
      );
      return { windows: windows.map((w: PlannedWindow) => encodeWindow(w, rules.spec.timeZone)) };
    }),
    triggerWindow: unary(logger, 'TriggerWindow', async (req) => ({
      instance: encodeInstance(
        await service.trigger(req.groupId, checkTime(req.windowStart, 'window_start'), req.rerun),
        await zoneOf(req.groupId),
      ),
    })),
    backfill: unary(logger, 'Backfill', async (req, call) => {
      const modes: Record<number, 'MISSING' | 'FAILED' | 'ALL'> = {
        [BackfillMode.BACKFILL_MODE_UNSPECIFIED]: 'MISSING',
        [BackfillMode.BACKFILL_MODE_MISSING]: 'MISSING',
        [BackfillMode.BACKFILL_MODE_FAILED]: 'FAILED',
        [BackfillMode.BACKFILL_MODE_ALL]: 'ALL',
      };
      const mode = modes[req.mode];
      if (!mode) throw invalidArgument('mode', 'BACKFILL_MODE_MISSING, _FAILED or _ALL', req.mode);
      const result = await service.backfill({
        groupId: req.groupId,
        fromTime: checkTime(req.fromTime, 'from_time'),
        toTime: checkTime(req.toTime, 'to_time'),
        mode,
        maxParallel: req.maxParallel,
        reverse: req.reverse,
        dryRun: req.dryRun,
        signal: callSignal(call),
      });
      const zone = await zoneOf(req.groupId);
      return {
        windows: result.windows.map((w) => encodeWindow(w, zone)),
        instances: result.instances.map((i) => encodeInstance(i, zone)),
      };
    }),
    listInstances: unary(logger, 'ListInstances', async (req) => {
      if (req.groupId === '') throw invalidArgument('group_id', 'a group id', req.groupId);
      const limit = checkPageSize(req.pageSize);
      const token = decodeInstanceToken(req.pageToken);
      const states = decodeEnums(req.states, STATE_FROM_PB, 'states');
      const rows = await service.listInstances({
        groupId: req.groupId,
        limit: limit + 1,
        ...(states ? { states } : {}),
        ...(req.windowFrom > 0 ? { windowFrom: req.windowFrom } : {}),
        ...(req.windowTo > 0 ? { windowTo: req.windowTo } : {}),
        ...(token !== undefined ? { after: { groupId: req.groupId, windowStart: token } } : {}),
      });
      const page = rows.slice(0, limit);
      const zone = await zoneOf(req.groupId);
      return {
        instances: page.map((i) => encodeInstance(i, zone)),
        nextPageToken: rows.length > limit ? encodePageToken(String(page[page.length - 1]!.windowStart)) : '',
      };
    }),
    claimWindow: unary(logger, 'ClaimWindow', async (req) => {
      if (req.triggeredBy === '') throw invalidArgument('triggered_by', 'who submitted the window', req.triggeredBy);
      const result = await service.claimWindow({
        groupId: req.groupId,
        boundaries: decodeBoundaries(req.boundaries, 'boundaries'),
        triggeredBy: req.triggeredBy,
        rerun: req.rerun,
      });
      return { instance: encodeInstance(result.instance, await zoneOf(req.groupId)), created: result.created };
    }),
    fireDue: unary(logger, 'FireDue', async (req) => {
      const result = await service.fireDueChecked(req.groupId, checkTime(req.asOf, 'as_of'));
      const zone = await zoneOf(req.groupId);
      return {
        instances: result.instances.map((i) => encodeInstance(i, zone)),
        nextDueTime: result.nextDueTime ?? 0,
      };
    }),
  };
  return { definition: ScheduleServiceService, implementation };
}
