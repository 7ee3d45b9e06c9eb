/** The prefix of every DAG id and Variable key Sluice owns in Airflow; nothing else is touched. */
export const PREFIX = 'sluice__';
/** The Airflow Connection holding Sluice's URL and callback token for the DAGs. */
export const CONNECTION_ID = 'sluice';
/**
 * The one Variable the DAG factory reads on each parse: every live group's DAG settings. Not under
 * PREFIX (`sluice_dags`, one underscore), so no group can be named like it.
 */
export const INDEX_KEY = 'sluice_dags';

/** The DAG id of a group, and the key of the Variable its schedule is stored in (the same string). */
export function dagId(groupId: string): string {
  return PREFIX + groupId;
}

/** The group of a DAG id or Variable key Sluice owns; undefined for anyone else's. */
export function groupOf(key: string): string | undefined {
  return key.startsWith(PREFIX) && key.length > PREFIX.length ? key.slice(PREFIX.length) : undefined;
}
