/**
 * A covering cron that always holds and is never the coarsest: every minute, with the first and last due
 * times of the schedule. For engine unit tests that need EngineContext.coveringCron to answer without
 * depending on how the real one picks its cron.
 */
import type { CoveringCron, CronDialect, ScheduleInfo } from 'sluice/sdk';
import { firingRules, normalizeInfo } from '../../services/schedule/domain/info.js';
import { dueTime } from '../../services/schedule/domain/plan.js';
import { windowsAfter } from '../../services/schedule/domain/windows.js';

const up = (ms: number, step: number) => Math.ceil(ms / step) * step;

export function everyMinuteCoveringCron(info: ScheduleInfo, dialect: CronDialect): CoveringCron {
  const rules = firingRules(normalizeInfo(info));
  const step = dialect === 'unix' ? 60_000 : 1000;
  const first = windowsAfter(rules.spec).next().value!;
  const last = windowsAfter(rules.spec, rules.spec.endTime - 1).next().value!;
  return {
    expression: dialect === 'unix' ? '* * * * *' : '* * * * * ? *',
    timeZone: rules.spec.timeZone,
    exact: false,
    resolutionMs: step,
    firstDue: up(dueTime(rules, first), step),
    lastDue: up(dueTime(rules, last), step),
  };
}
