/** The prefix of every workflow Sluice owns in DolphinScheduler; nothing else is touched. */
export const PREFIX = 'sluice__';
/** The name of the one HTTP task of each workflow. */
export const TASK_NAME = 'fire-due';

/** The workflow name of a group. */
export function workflowName(groupId: string): string {
  return PREFIX + groupId;
}

/** The group of a workflow name Sluice owns; undefined for anyone else's. */
export function groupOf(name: string): string | undefined {
  return name.startsWith(PREFIX) && name.length > PREFIX.length ? name.slice(PREFIX.length) : undefined;
}
