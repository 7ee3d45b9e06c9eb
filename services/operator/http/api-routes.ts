import { invalidArgument } from 'sluice/sdk';
import {
  CancelJobRequest,
  CancelJobResponse,
  GetGroupRequest,
  GetGroupResponse,
  GetJobRequest,
  GetJobResponse,
  ListGroupsRequest,
  ListGroupsResponse,
  ListJobsRequest,
  ListJobsResponse,
  OperatorServiceService,
} from '../../../proto/gen/sluice/operator/v1/operator.js';
import {
  BackfillRequest,
  BackfillResponse,
  GetScheduleRequest,
  GetScheduleResponse,
  ListInstancesRequest,
  ListInstancesResponse,
  PauseScheduleRequest,
  PauseScheduleResponse,
  PreviewWindowsRequest,
  PreviewWindowsResponse,
  ResumeScheduleRequest,
  ResumeScheduleResponse,
  ScheduleServiceService,
  TriggerWindowRequest,
  TriggerWindowResponse,
} from '../../../proto/gen/sluice/schedule/v1/schedule.js';

/** The gRPC side of a route: the method's definition and its messages' proto3 JSON mapping. */
export interface RpcBinding {
  readonly service: 'operator' | 'schedule';
  readonly definition: {
    readonly path: string;
    requestSerialize(value: never): Buffer;
    responseDeserialize(value: Buffer): unknown;
  };
  fromJSON(json: unknown): unknown;
  toJSON(message: never): unknown;
}

/**
 * One path of the JSON API: a method and a pattern whose `{name}` segments become request fields,
 * the query parameters it takes (also request fields; `arrays` are comma-separated lists) and the RPC
 * it is. POST routes take the rest of the request as a JSON body.
 */
export interface ApiRoute {
  readonly method: 'GET' | 'POST';
  readonly pattern: string;
  readonly query?: readonly string[];
  readonly arrays?: readonly string[];
  readonly rpc: RpcBinding;
}

const bind = <Req, Res>(
  service: RpcBinding['service'],
  definition: {
    path: string;
    requestSerialize: (value: Req) => Buffer;
    responseDeserialize: (value: Buffer) => Res;
  },
  request: { fromJSON(json: unknown): Req },
  response: { toJSON(message: Res): unknown },
): RpcBinding => ({
  service,
  definition: definition as unknown as RpcBinding['definition'],
  fromJSON: (json) => request.fromJSON(json),
  toJSON: (message) => response.toJSON(message as Res),
});

const op = OperatorServiceService;
const sc = ScheduleServiceService;
const PAGE = ['pageSize', 'pageToken'];

/** Every route of `/sluice/v1` the dashboard and scripts use; docs/http-api.md lists the same. */
export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'GET',
    pattern: '/sluice/v1/groups',
    query: [...PAGE, 'statuses'],
    arrays: ['statuses'],
    rpc: bind('operator', op.listGroups, ListGroupsRequest, ListGroupsResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/groups/{groupId}',
    rpc: bind('operator', op.getGroup, GetGroupRequest, GetGroupResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/groups/{groupId}/schedule',
    rpc: bind('schedule', sc.getSchedule, GetScheduleRequest, GetScheduleResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/groups/{groupId}/instances',
    query: [...PAGE, 'states', 'windowFrom', 'windowTo'],
    arrays: ['states'],
    rpc: bind('schedule', sc.listInstances, ListInstancesRequest, ListInstancesResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/groups/{groupId}/windows',
    query: ['fromTime', 'count'],
    rpc: bind('schedule', sc.previewWindows, PreviewWindowsRequest, PreviewWindowsResponse),
  },
  {
    method: 'POST',
    pattern: '/sluice/v1/groups/{groupId}/trigger',
    rpc: bind('schedule', sc.triggerWindow, TriggerWindowRequest, TriggerWindowResponse),
  },
  {
    method: 'POST',
    pattern: '/sluice/v1/groups/{groupId}/backfill',
    rpc: bind('schedule', sc.backfill, BackfillRequest, BackfillResponse),
  },
  {
    method: 'POST',
    pattern: '/sluice/v1/groups/{groupId}/pause',
    rpc: bind('schedule', sc.pauseSchedule, PauseScheduleRequest, PauseScheduleResponse),
  },
  {
    method: 'POST',
    pattern: '/sluice/v1/groups/{groupId}/resume',
    rpc: bind('schedule', sc.resumeSchedule, ResumeScheduleRequest, ResumeScheduleResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/jobs',
    query: [...PAGE, 'groupId', 'states', 'windowFrom', 'windowTo'],
    arrays: ['states'],
    rpc: bind('operator', op.listJobs, ListJobsRequest, ListJobsResponse),
  },
  {
    method: 'GET',
    pattern: '/sluice/v1/jobs/{jobId}',
    rpc: bind('operator', op.getJob, GetJobRequest, GetJobResponse),
  },
  {
    method: 'POST',
    pattern: '/sluice/v1/jobs/{jobId}/cancel',
    rpc: bind('operator', op.cancelJob, CancelJobRequest, CancelJobResponse),
  },
];

/** The route a path belongs to (whatever the method) and the values of its `{name}` segments. */
export function matchRoute(
  path: string,
  routes: readonly ApiRoute[] = API_ROUTES,
): { routes: ApiRoute[]; params: Record<string, string> } | undefined {
  const parts = path.split('/');
  let found: { routes: ApiRoute[]; params: Record<string, string> } | undefined;
  for (const route of routes) {
    const want = route.pattern.split('/');
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      const w = want[i]!;
      const p = parts[i]!;
      if (w.startsWith('{')) {
        if (p === '') ok = false;
        else params[w.slice(1, -1)] = decodePathPart(p);
      } else ok = w === p;
    }
    if (!ok) continue;
    if (found) found.routes.push(route);
    else found = { routes: [route], params };
  }
  return found;
}

/**
 * A path segment as text; a malformed percent-encoding (`%E0%A4%A`) is INVALID_ARGUMENT naming it, not a
 * URIError that ends as a 500.
 */
export function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalidArgument('path', 'a path whose %-escapes are UTF-8', part);
  }
}
