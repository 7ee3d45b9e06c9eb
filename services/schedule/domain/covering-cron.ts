import { ERROR_CODES, SluiceError, type CoveringCron, type CronDialect, type ScheduleInfo } from 'sluice/sdk';

/**
 * The cron an external scheduler ticks on to drive a schedule through FireDue (see
 * EngineContext.coveringCron). Not written yet: engines that need it fail their register with this error.
 */
export function coveringCron(info: ScheduleInfo, dialect: CronDialect): CoveringCron {
  throw new SluiceError(
    ERROR_CODES.FAILED_PRECONDITION,
    `no covering ${dialect} cron can be computed yet for group '${info.groupId}'`,
  );
}
