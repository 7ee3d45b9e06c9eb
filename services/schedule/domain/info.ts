import { invalidArgument, type ScheduleInfo } from 'sluice/sdk';
import type { FiringRules } from './plan.js';
import { windowSpec } from './windows.js';

const GROUP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The longest delay_time, in minutes (3,650 days): a window's due time (its end plus the delay) stays an
 * instant a Date can hold and an int64 exact in JavaScript, whatever the end_time.
 */
export const MAX_DELAY_MINUTES = 5_256_000;

/** The engine type a schedule runs on when it names none. */
export const DEFAULT_ENGINE = 'builtin';

/**
 * The engine id of a schedule with engine `None` (any case): no engine plugin runs it; its windows
 * fire only through TriggerWindow, Backfill, FireDue or a submitted window. InLong's explicit manual mode.
 */
export const NO_ENGINE = 'none';

/** True when a schedule_engine value means "no engine". */
export function isNoEngine(scheduleEngine: string): boolean {
  return scheduleEngine.toLowerCase() === NO_ENGINE;
}

/**
 * Checks every field of a schedule and returns the rules that fire it. INVALID_ARGUMENT names the
 * field (as in the proto: start_time, delay_time, ...), what was expected and what came.
 */
export function firingRules(info: ScheduleInfo): FiringRules {
  if (!GROUP_ID.test(info.groupId))
    throw invalidArgument(
      'group_id',
      'letters, digits, ".", "_" or "-" (1-128, starting with a letter or digit)',
      info.groupId,
    );
  const spec = windowSpec(info);
  if (!Number.isSafeInteger(info.delayTime) || info.delayTime < 0 || info.delayTime > MAX_DELAY_MINUTES)
    throw invalidArgument('delay_time', `whole minutes from 0 to ${MAX_DELAY_MINUTES} (3,650 days)`, info.delayTime);
  if (![0, 1, 2].includes(info.selfDepend))
    throw invalidArgument(
      'self_depend',
      '0 (independent), 1 (wait for the previous window) or 2 (parallel up to task_parallelism)',
      info.selfDepend,
    );
  if (info.selfDepend === 2 && (!Number.isSafeInteger(info.taskParallelism) || info.taskParallelism < 1)) {
    throw invalidArgument('task_parallelism', 'an integer >= 1 with self_depend 2', info.taskParallelism);
  }
  if (!['ALL', 'LATEST', 'NONE'].includes(info.catchUp.mode))
    throw invalidArgument('catch_up.mode', 'ALL, LATEST or NONE', info.catchUp.mode);
  if (!Number.isSafeInteger(info.catchUp.windowMs) || info.catchUp.windowMs < 0)
    throw invalidArgument('catch_up.window_ms', 'milliseconds >= 0 (0: unbounded)', info.catchUp.windowMs);
  if (info.alignment !== 'END' && info.alignment !== 'START')
    throw invalidArgument('alignment', 'WINDOW_ALIGNMENT_END or WINDOW_ALIGNMENT_START', info.alignment);
  return {
    spec,
    delayMs: info.delayTime * 60_000,
    alignment: info.alignment,
    catchUp: info.catchUp,
    selfDepend: info.selfDepend as 0 | 1 | 2,
    parallelism: info.selfDepend === 2 ? info.taskParallelism : 1,
  };
}

/** The schedule as stored: defaults made explicit so every engine sees the same values. */
export function normalizeInfo(info: ScheduleInfo): ScheduleInfo {
  return {
    ...info,
    timeZone: info.timeZone === '' ? 'UTC' : info.timeZone,
    scheduleUnit: info.scheduleUnit.toUpperCase(),
    scheduleInterval:
      info.scheduleUnit.toUpperCase() === 'O' && info.scheduleInterval === 0 ? 1 : info.scheduleInterval,
    scheduleEngine: info.scheduleEngine === '' ? DEFAULT_ENGINE : info.scheduleEngine,
    // Only selfDepend 2 reads it; there a missing value is an error, not a default.
    taskParallelism: info.selfDepend === 2 || info.taskParallelism > 0 ? info.taskParallelism : 1,
  };
}
