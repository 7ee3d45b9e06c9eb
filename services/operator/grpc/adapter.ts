import type { ServerWritableStream } from '@grpc/grpc-js';
import { callerName, callerRole } from '../../core/grpc-auth.js';
import { ERROR_CODES, SluiceError, invalidArgument, type Logger } from 'sluice/sdk';
import { encodeBoundaries, decodeBoundaryType, unary } from '../../core/grpc-adapter.js';
import { toServiceError } from '../../core/grpc-status.js';
import { DEFAULT_MAX_WATCH_STREAMS } from '../../core/limits.js';
import { maskOptions } from '../../core/option-secrets.js';
import { checkPageSize, decodePageToken, encodePageToken } from '../../core/paging.js';
import {
  GroupStatus as PbGroupStatus,
  JobState as PbJobState,
  OperatorServiceService,
  type Group,
  type Job,
  type OperatorServiceServer,
  type WatchJobRequest,
  type WatchJobResponse,
} from '../../../proto/gen/sluice/operator/v1/operator.js';
import { decodeInfo, encodeInfo } from '../../schedule/grpc/adapter.js';
import { CASTS } from '../domain/mapping.js';
import type { FieldMapping, GroupRecord, GroupStatus, JobRecord, JobState } from '../domain/model.js';
import type { GroupInput, OperatorService } from '../domain/service.js';

const GROUP_STATUS: Record<GroupStatus, PbGroupStatus> = {
  NEW: PbGroupStatus.GROUP_STATUS_NEW,
  APPROVED: PbGroupStatus.GROUP_STATUS_APPROVED,
  REGISTERED: PbGroupStatus.GROUP_STATUS_REGISTERED,
  DELETED: PbGroupStatus.GROUP_STATUS_DELETED,
};
const JOB_STATE: Record<JobState, PbJobState> = {
  PENDING: PbJobState.JOB_STATE_PENDING,
  RUNNING: PbJobState.JOB_STATE_RUNNING,
  SUCCEEDED: PbJobState.JOB_STATE_SUCCEEDED,
  FAILED: PbJobState.JOB_STATE_FAILED,
  CANCELLED: PbJobState.JOB_STATE_CANCELLED,
};
const invert = <K extends string>(m: Record<K, number>) =>
  new Map<number, K>(Object.entries(m).map(([k, v]) => [v as number, k as K]));
const GROUP_STATUS_FROM = invert(GROUP_STATUS);
const JOB_STATE_FROM = invert(JOB_STATE);

function decodeGroup(g: Group | undefined, version: number): GroupInput {
  if (!g) throw invalidArgument('group', 'a Group', undefined);
  return {
    groupId: g.groupId,
    description: g.description,
    streams: g.streams.map((s, i) => {
      if (!s.source) throw invalidArgument(`group.streams[${i}].source`, 'a source endpoint', undefined);
      if (!s.sink) throw invalidArgument(`group.streams[${i}].sink`, 'a sink endpoint', undefined);
      return {
        streamId: s.streamId,
        source: { connectorId: s.source.connectorId, options: s.source.options ?? {} },
        sink: { connectorId: s.sink.connectorId, options: s.sink.options ?? {} },
        fields: s.fields.map((f, j) => {
          if (!(CASTS as readonly string[]).includes(f.cast))
            throw invalidArgument(
              `group.streams[${i}].fields[${j}].cast`,
              `one of ${CASTS.filter(Boolean).join(', ')} or empty`,
              f.cast,
            );
          return { sourceField: f.sourceField, targetField: f.targetField, cast: f.cast as FieldMapping['cast'] };
        }),
      };
    }),
    ...(g.schedule ? { schedule: decodeInfo(g.schedule) } : {}),
    runner: g.runner,
    ...(g.retry ? { retry: { maxAttempts: g.retry.maxAttempts, initialBackoffMs: g.retry.initialBackoffMs } } : {}),
    version,
  };
}

export function encodeGroup(g: GroupRecord): Group {
  return {
    groupId: g.groupId,
    description: g.description,
    streams: g.streams.map((s) => ({
      streamId: s.streamId,
      source: { connectorId: s.source.connectorId, options: maskOptions(s.source.options) },
      sink: { connectorId: s.sink.connectorId, options: maskOptions(s.sink.options) },
      fields: s.fields.map((f) => ({ ...f })),
    })),
    schedule: encodeInfo(g.schedule, g.schedule.version),
    runner: g.runner,
    retry: { ...g.retry },
    status: GROUP_STATUS[g.status],
    version: g.version,
    createdAt: g.createdAt,
    updatedAt: g.updatedAt,
  };
}

export function encodeJob(j: JobRecord): Job {
  return {
    jobId: j.jobId,
    groupId: j.groupId,
    streamId: j.streamId,
    instanceId: j.instanceId,
    boundaries: encodeBoundaries(j.boundaries),
    state: JOB_STATE[j.state],
    runner: j.runner,
    attempt: j.attempt,
    resolvedSourceOptions: maskOptions(j.resolvedSourceOptions),
    resolvedPositions: { ...j.resolvedPositions },
    progress: { records: j.progress.records, bytes: j.progress.bytes, positions: { ...j.progress.positions } },
    error: j.error,
    createdAt: j.createdAt,
    startedAt: j.startedAt ?? 0,
    finishedAt: j.finishedAt ?? 0,
    traceId: j.traceId ?? '',
  };
}

function decodeStates<T>(values: readonly number[], map: Map<number, T>, field: string): T[] | undefined {
  if (values.length === 0) return undefined;
  return values.map((v) => {
    const d = map.get(v);
    if (d === undefined) throw invalidArgument(field, `known values (${[...map.values()].join(', ')})`, v);
    return d;
  });
}

/** Settings of the OperatorService gRPC adapter. */
export interface OperatorGrpcOptions {
  /** WatchJob streams open at once in this process (SLUICE_MAX_WATCH_STREAMS); default DEFAULT_MAX_WATCH_STREAMS. */
  readonly maxWatchStreams?: number;
}

/** The OperatorService gRPC adapter: decode, call one use case, encode. */
export function operatorGrpc(
  service: OperatorService,
  logger: Logger,
  options: OperatorGrpcOptions = {},
): { definition: typeof OperatorServiceService; implementation: OperatorServiceServer } {
  const maxWatchStreams = options.maxWatchStreams ?? DEFAULT_MAX_WATCH_STREAMS;
  // Open WatchJob streams: each holds a listener (and a place in the watch poller) until it is over. Admin callers
  // (Sluice's own services: the schedule service follows every job it dispatched) count apart from the others,
  // so that viewers holding every slot cannot leave the dispatcher deaf to its jobs' ends.
  const watchStreams = { admin: 0, others: 0 };
  const implementation: OperatorServiceServer = {
    createGroup: unary(logger, 'CreateGroup', async (req) => ({
      group: encodeGroup(await service.createGroup(decodeGroup(req.group, 0))),
    })),
    updateGroup: unary(logger, 'UpdateGroup', async (req) => ({
      group: encodeGroup(await service.updateGroup(decodeGroup(req.group, req.group?.version ?? 0))),
    })),
    approveGroup: unary(logger, 'ApproveGroup', async (req) => ({
      group: encodeGroup(await service.approveGroup(req.groupId, req.version)),
    })),
    deleteGroup: unary(logger, 'DeleteGroup', async (req) => ({
      group: encodeGroup(await service.deleteGroup(req.groupId, req.version)),
    })),
    getGroup: unary(logger, 'GetGroup', async (req) => ({ group: encodeGroup(await service.getGroup(req.groupId)) })),
    listGroups: unary(logger, 'ListGroups', async (req) => {
      const limit = checkPageSize(req.pageSize);
      const after = decodePageToken(req.pageToken);
      // Deleted groups only when asked for: by include_deleted, or by naming GROUP_STATUS_DELETED.
      const statuses =
        decodeStates(req.statuses, GROUP_STATUS_FROM, 'statuses') ??
        (req.includeDeleted ? undefined : (['NEW', 'APPROVED', 'REGISTERED'] as GroupStatus[]));
      const rows = await service.listGroups({
        limit: limit + 1,
        ...(after ? { afterGroupId: after } : {}),
        ...(statuses ? { statuses } : {}),
      });
      const page = rows.slice(0, limit);
      return {
        groups: page.map(encodeGroup),
        nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.groupId) : '',
      };
    }),
    submitOfflineJob: unary(logger, 'SubmitOfflineJob', async (req, call) => {
      const r = req.request;
      if (!r) throw invalidArgument('request', 'an OfflineJobRequest', undefined);
      // A named instance skips ClaimWindow (the schedule service claimed it): only Sluice's own services, admin, may
      // say so. Another caller would run any bounds, unrecorded and unchecked against the schedule's windows.
      if (r.instanceId !== '' && callerRole(call.metadata) !== 'admin')
        throw new SluiceError(
          ERROR_CODES.PERMISSION_DENIED,
          'request.instance_id: only an admin caller (a Sluice service) may name a claimed instance; leave it empty',
          { field: 'request.instance_id', expected: 'empty unless the caller is admin', received: 'an instance id' },
        );
      const result = await service.submitOfflineJob(
        {
          groupId: r.groupId,
          boundaryType: decodeBoundaryType(r.boundaryType, 'request.boundary_type'),
          lowerBound: r.lowerBoundary,
          upperBound: r.upperBoundary,
          instanceId: r.instanceId,
        },
        req.rerun,
        callerName(call.metadata),
      );
      return { jobs: result.jobs.map(encodeJob), created: result.created, instance: result.instance };
    }),
    getJob: unary(logger, 'GetJob', async (req) => ({ job: encodeJob(await service.getJob(req.jobId)) })),
    listJobs: unary(logger, 'ListJobs', async (req) => {
      const limit = checkPageSize(req.pageSize);
      const after = decodePageToken(req.pageToken);
      const states = decodeStates(req.states, JOB_STATE_FROM, 'states');
      const rows = await service.listJobs({
        limit: limit + 1,
        ...(req.groupId ? { groupId: req.groupId } : {}),
        ...(states ? { states } : {}),
        ...(req.windowFrom > 0 ? { windowFrom: req.windowFrom } : {}),
        ...(req.windowTo > 0 ? { windowTo: req.windowTo } : {}),
        ...(after ? { afterJobId: after } : {}),
      });
      const page = rows.slice(0, limit);
      return {
        jobs: page.map(encodeJob),
        nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.jobId) : '',
      };
    }),
    cancelJob: unary(logger, 'CancelJob', async (req) => ({ job: encodeJob(await service.cancelJob(req.jobId)) })),
    watchJob: (call: ServerWritableStream<WatchJobRequest, WatchJobResponse>) => {
      const kind = callerRole(call.metadata) === 'admin' ? 'admin' : 'others';
      if (watchStreams[kind] >= maxWatchStreams) {
        const err = new SluiceError(
          ERROR_CODES.RESOURCE_EXHAUSTED,
          `WatchJob: expected at most ${maxWatchStreams} open streams of ${kind === 'admin' ? 'admin callers' : 'viewer and operator callers'} in this process (SLUICE_MAX_WATCH_STREAMS), got one more; close a stream or try again later`,
        );
        call.emit('error', toServiceError(err, logger, 'WatchJob'));
        return;
      }
      watchStreams[kind]++;
      let unsubscribe: (() => void) | undefined;
      let done = false;
      let released = false;
      // The slot is given back once, however the stream is over: the job ended, the client cancelled or went, or
      // the watch failed.
      const release = () => {
        if (released) return;
        released = true;
        watchStreams[kind]--;
      };
      const unsubscribeOnce = () => {
        const u = unsubscribe;
        unsubscribe = undefined;
        u?.();
      };
      const finish = () => {
        done = true;
        unsubscribeOnce();
        release();
      };
      call.on('cancelled', finish);
      call.on('close', finish);
      service
        .watchJob(call.request.jobId, (job) => {
          if (done) return;
          call.write({ job: encodeJob(job) });
          if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.state)) {
            finish();
            call.end();
          }
        })
        .then((u) => {
          unsubscribe = u;
          if (done) unsubscribeOnce();
        })
        .catch((err: unknown) => {
          done = true;
          release();
          // grpc-js turns an 'error' event on a server stream into the call's status.
          call.emit('error', toServiceError(err, logger, 'WatchJob'));
        });
    },
  };
  return { definition: OperatorServiceService, implementation };
}
