import type { CoveringCron, ScheduleInfo } from 'sluice/sdk';
import { dagId } from './names.js';

/**
 * What the DAG factory (dags/sluice_dags.py) needs to build a group's DAG, computed by Sluice so the
 * factory holds no window logic: the covering cron in the schedule's zone and the first and last due
 * times (epoch ms) as the DAG's start and end dates.
 */
export interface DagSpec {
  readonly dagId: string;
  readonly groupId: string;
  /** 5-field Unix cron, evaluated in `timeZone`. */
  readonly cron: string;
  readonly timeZone: string;
  /** False when the cron ticks more often than the schedule is due (FireDue makes those ticks no-ops). */
  readonly exact: boolean;
  readonly firstDue: number;
  /** Absent: the schedule has no end. */
  readonly lastDue?: number;
  /** The schedule's version: Airflow's UI shows which one a DAG runs. */
  readonly version: number;
}

export function dagSpec(info: ScheduleInfo, covering: CoveringCron): DagSpec {
  return {
    dagId: dagId(info.groupId),
    groupId: info.groupId,
    cron: covering.expression,
    timeZone: covering.timeZone,
    exact: covering.exact,
    firstDue: covering.firstDue,
    ...(covering.lastDue !== undefined ? { lastDue: covering.lastDue } : {}),
    version: info.version,
  };
}

/** A group's own Variable: the schedule as Sluice stores it (epoch ms, IANA zone) and the DAG it makes. */
export function variableValue(info: ScheduleInfo, spec: DagSpec): string {
  return JSON.stringify({ format: 2, dagId: spec.dagId, dag: spec, schedule: info });
}

/** The index Variable's value: `{format, dags: {<groupId>: DagSpec}}`, keys sorted so equal indexes are equal text. */
export interface DagIndex {
  readonly format: 1;
  readonly dags: Record<string, DagSpec>;
}

export function parseIndex(text: string | undefined): DagIndex {
  if (text === undefined) return { format: 1, dags: {} };
  try {
    const parsed = JSON.parse(text) as Partial<DagIndex>;
    if (parsed && typeof parsed.dags === 'object' && parsed.dags !== null) return { format: 1, dags: parsed.dags };
  } catch {
    // A hand-edited, broken index is rebuilt from Sluice's store, the source of truth.
  }
  return { format: 1, dags: {} };
}

export function indexText(index: DagIndex): string {
  const dags: Record<string, DagSpec> = {};
  for (const k of Object.keys(index.dags).sort()) dags[k] = index.dags[k]!;
  return JSON.stringify({ format: 1, dags });
}
