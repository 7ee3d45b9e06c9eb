import type { CoveringCron, ScheduleInfo } from 'sluice/sdk';
import type { DsScheduleParam } from './client.js';
import { TASK_NAME, workflowName } from './names.js';

/** How often the HTTP task retries a failed FireDue call, and after how many minutes. */
export const RETRY_TIMES = 3;
export const RETRY_INTERVAL_MINUTES = 1;
/** Margin around the first and last due time for the schedule's start and end (see formatUtc). */
const MARGIN_MS = 86_400_000;

/**
 * The run's schedule time as epoch milliseconds, written into the HTTP body. DolphinScheduler
 * resolves `$[...]` in the body from `system.datetime`, the workflow instance's schedule time (the
 * Quartz fire time) as a wall time in its server's zone, and `timestamp(...)` reads that wall time
 * back in the same zone as epoch seconds: zone-free, where `${system.datetime}` or
 * `$[yyyy-MM-dd HH:mm:ss]` would be wall times of a zone Sluice cannot see. Quartz fires on whole
 * seconds, so `000` appended makes milliseconds exactly. (Only in a server zone's repeated fall-back
 * hour can the read-back take the first pass: an earlier as_of fires nothing early; the window fires
 * at the next tick. Run DolphinScheduler in UTC to rule that out.)
 */
export const AS_OF_EXPRESSION = '$[timestamp(yyyyMMddHHmmss)]000';

/** The form fields of a one-task workflow whose HTTP task POSTs FireDue for the group. */
export function workflowForm(
  info: ScheduleInfo,
  taskCode: number,
  publicUrl: string,
  callbackToken: string | undefined,
): Record<string, string> {
  const url = `${publicUrl.replace(/\/+$/, '')}/sluice/v1/groups/${encodeURIComponent(info.groupId)}/fire-due`;
  const task = {
    code: taskCode,
    name: TASK_NAME,
    version: 1,
    description: `Calls Sluice's FireDue for group ${info.groupId} (managed by Sluice)`,
    taskType: 'HTTP',
    taskParams: {
      url,
      httpMethod: 'POST',
      httpParams: [
        ...(callbackToken
          ? [{ prop: 'Authorization', httpParametersType: 'HEADERS', value: `Bearer ${callbackToken}` }]
          : []),
        { prop: 'Content-Type', httpParametersType: 'HEADERS', value: 'application/json' },
      ],
      httpBody: `{"asOf": ${AS_OF_EXPRESSION}}`,
      httpCheckCondition: 'STATUS_CODE_DEFAULT',
      condition: '',
      connectTimeout: 30_000,
      socketTimeout: 30_000,
      localParams: [],
      resourceList: [],
    },
    flag: 'YES',
    taskPriority: 'MEDIUM',
    workerGroup: 'default',
    environmentCode: -1,
    failRetryTimes: RETRY_TIMES,
    failRetryInterval: RETRY_INTERVAL_MINUTES,
    timeoutFlag: 'CLOSE',
    timeout: 0,
    delayTime: 0,
    taskGroupId: 0,
    taskGroupPriority: 0,
    cpuQuota: -1,
    memoryMax: -1,
    taskExecuteType: 'BATCH',
  };
  const relation = {
    name: '',
    preTaskCode: 0,
    preTaskVersion: 0,
    postTaskCode: taskCode,
    postTaskVersion: 1,
    conditionType: 'NONE',
    conditionParams: {},
  };
  return {
    name: workflowName(info.groupId),
    description: `Sluice schedule of group ${info.groupId} (managed by Sluice: edits are overwritten)`,
    taskDefinitionJson: JSON.stringify([task]),
    taskRelationJson: JSON.stringify([relation]),
    locations: JSON.stringify([{ taskCode, x: 100, y: 100 }]),
    globalParams: '[]',
    timeout: '0',
    // FireDue decides what is due; runs of one group must not overlap in DolphinScheduler either.
    executionType: 'SERIAL_WAIT',
  };
}

/**
 * `yyyy-MM-dd HH:mm:ss` in UTC. DolphinScheduler reads schedule dates in its server's zone, which
 * Sluice cannot see: the start is a day before the first due time and the end a day after the last,
 * so any server zone keeps every tick inside; ticks in the margin find nothing due.
 */
export function formatUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** The schedule of a workflow: the covering Quartz cron in its zone, between the margins. */
export function scheduleParam(cc: CoveringCron): DsScheduleParam {
  return {
    startTime: formatUtc(cc.firstDue - MARGIN_MS),
    // No end: DolphinScheduler needs one; a century on.
    endTime: formatUtc((cc.lastDue ?? cc.firstDue + 100 * 365 * 86_400_000) + MARGIN_MS),
    crontab: cc.expression,
    timezoneId: cc.timeZone,
  };
}
