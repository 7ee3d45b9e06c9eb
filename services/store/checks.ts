import { invalidArgument, type Boundaries } from 'sluice/sdk';
import type { JobRecord } from '../operator/domain/model.js';

/** Checks that need no database: the same rules in either dialect. */

/** The lower bound of a TIME window as epoch ms, for range queries; NULL for OFFSET windows (and bounds that are not integers). */
export function windowLowerMs(boundaries: Boundaries): number | null {
  if (boundaries.boundaryType !== 'TIME' || !/^-?\d+$/.test(boundaries.lowerBound)) return null;
  const ms = Number(boundaries.lowerBound);
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * Checks that `jobs` are the jobs of one window (one group, boundaries and generation; one per stream)
 * and returns them in streamId order: every caller inserts in that order, so concurrent transactions
 * wait on each other's rows instead of deadlocking.
 */
export function windowJobs(jobs: readonly JobRecord[]): JobRecord[] {
  const first = jobs[0];
  if (first === undefined) throw invalidArgument('jobs', 'the jobs of one window (at least one)', []);
  const streams = new Set<string>();
  jobs.forEach((job, i) => {
    const { boundaries: b } = job;
    if (
      job.groupId !== first.groupId ||
      job.generation !== first.generation ||
      b.boundaryType !== first.boundaries.boundaryType ||
      b.lowerBound !== first.boundaries.lowerBound ||
      b.upperBound !== first.boundaries.upperBound
    ) {
      throw invalidArgument(
        `jobs[${i}]`,
        `a job of the window of jobs[0] (group ${first.groupId}, ${first.boundaries.boundaryType} [${first.boundaries.lowerBound}, ${first.boundaries.upperBound}), generation ${first.generation})`,
        `group ${job.groupId}, ${b.boundaryType} [${b.lowerBound}, ${b.upperBound}), generation ${job.generation}`,
      );
    }
    if (streams.has(job.streamId)) throw invalidArgument(`jobs[${i}].streamId`, 'one job per stream', job.streamId);
    streams.add(job.streamId);
  });
  return [...jobs].sort((x, y) => (x.streamId < y.streamId ? -1 : x.streamId > y.streamId ? 1 : 0));
}

/** Thrown inside insertWindowJobs' transaction to roll it back: the window's jobs exist already. */
export class WindowTaken extends Error {}

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) throw invalidArgument('limit', 'an integer >= 0', limit);
}
