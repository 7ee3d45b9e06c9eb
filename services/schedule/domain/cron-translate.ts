import type { CronDialect } from 'sluice/sdk';
import type { CronFields } from './cron-syntax.js';
import { DOM_RANGE, HOUR_RANGE, MINUTE_RANGE, MONTH_RANGE, renderField, renderWeekdays } from './cron-render.js';
import { MACROS } from './cron-syntax.js';

/**
 * A schedule's own cron written in another dialect, or undefined when that dialect cannot say it:
 * Unix cron has no seconds, no `L`, `W` or `#`, and Quartz cannot restrict both day fields (Unix
 * cron reads that as either). Same-dialect expressions are passed on as written (a 6-field Quartz
 * one gains its year field).
 */
export function renderTranslated(cron: CronFields, dialect: CronDialect): string | undefined {
  const trimmed = cron.source.trim();
  const text = trimmed.startsWith('@') ? MACROS[trimmed.toLowerCase()]! : trimmed;
  const fields = text.split(/\s+/);
  const quartzSource = fields.length !== 5;
  if (dialect === 'quartz' && quartzSource) return fields.length === 6 ? `${text} *` : text;
  if (dialect === 'unix' && !quartzSource) return text;
  const minutes = renderField(cron.minutes, MINUTE_RANGE, dialect);
  const hours = renderField(cron.hours, HOUR_RANGE, dialect);
  const months = renderField(cron.months, MONTH_RANGE, dialect);
  const plainDom =
    !cron.dom ||
    cron.dom.fromLast.length + cron.dom.nearestWeekday.length + cron.dom.nearestWeekdayFromLast.length === 0;
  const plainDow = !cron.dow || cron.dow.nth.length + cron.dow.last.length === 0;
  if (!plainDom || !plainDow) return undefined;
  const dom = cron.dom ? renderField(cron.dom.days, DOM_RANGE, dialect) : '*';
  const dow = cron.dow ? renderWeekdays(cron.dow.weekdays, dialect) : '*';
  if (dialect === 'quartz') {
    // From Unix cron: both day fields restricted means either day, which Quartz cannot say.
    if (cron.domOrDow) return undefined;
    return `0 ${minutes} ${hours} ${cron.dow ? '?' : dom} ${months} ${cron.dow ? dow : '?'} *`;
  }
  if (cron.seconds.length !== 1 || cron.seconds[0] !== 0) return undefined;
  return `${minutes} ${hours} ${dom} ${months} ${dow}`;
}
