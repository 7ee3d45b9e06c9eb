"""Sluice's DAG factory for Apache Airflow 3: one DAG per Sluice group whose schedule engine is Airflow.

Copy this file once into Airflow's DAGs folder. Sluice's `airflow` engine plugin keeps, through Airflow's
REST API, one Variable `sluice_dags` listing every live group's DAG (its covering cron, time zone, first
and last due time) and one Variable `sluice__<group>` per group (the schedule itself, for people). This
file reads `sluice_dags` and builds, for each entry, a DAG `sluice__<group>` whose single task calls
Sluice's FireDue with the run's time: Airflow is only the clock; Sluice decides which windows are due,
so retries and extra ticks fire nothing twice.

Parse cost: one Variable read per parse (Airflow's Task SDK reads Variables by key only, so Sluice keeps
the index rather than this file listing keys), then pure Python per group: no network, no database
query per group. The DAG processor parses this file every `min_file_process_interval` (30 s by default).

Only the standard library is used for HTTP (urllib), so no provider package is needed.
"""

from __future__ import annotations

import datetime
import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from airflow.sdk import DAG, Connection, Variable, task

try:  # Airflow >= 3.1 exports the timetables from the Task SDK.
    from airflow.sdk import CronTriggerTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.trigger import CronTriggerTimetable

log = logging.getLogger(__name__)

INDEX_KEY = "sluice_dags"
CONNECTION_ID = "sluice"
PREFIX = "sluice__"
# Each FireDue call gives up after this long; the task's retries take over.
REQUEST_TIMEOUT_S = 30
# Answers no retry can change: a bad request, bad credentials, or a group Sluice no longer knows.
PERMANENT_STATUSES = {400, 401, 403, 404, 412}

DEFAULT_ARGS = {
    "owner": "sluice",
    # FireDue is idempotent: a retry after a lost answer fires nothing twice.
    "retries": 8,
    "retry_delay": datetime.timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": datetime.timedelta(minutes=10),
}


def _utc(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def _epoch_ms(when):
    return int(round(when.timestamp() * 1000))


def read_index(text):
    """The index's entries by group id; an absent or malformed index is logged and gives no DAGs."""
    if text is None:
        return {}
    try:
        dags = json.loads(text)["dags"]
        if not isinstance(dags, dict):
            raise TypeError("dags is not an object")
        return dags
    except (ValueError, KeyError, TypeError) as err:
        log.error("Sluice: Variable %s is not Sluice's DAG index (%s); no Sluice DAG is built", INDEX_KEY, err)
        return {}


def check_spec(group_id, spec):
    """The checked settings of one entry; raises ValueError naming the field."""
    if not isinstance(spec, dict):
        raise ValueError("the entry is not a JSON object")
    for field, kind in (("dagId", str), ("cron", str), ("timeZone", str), ("firstDue", int)):
        if not isinstance(spec.get(field), kind) or isinstance(spec.get(field), bool):
            raise ValueError(f"{field}: expected {kind.__name__}, got {spec.get(field)!r}")
    if spec["dagId"] != PREFIX + group_id:
        raise ValueError(f"dagId: expected {PREFIX + group_id!r}, got {spec['dagId']!r}")
    if len(spec["cron"].split()) != 5:
        raise ValueError(f"cron: expected 5 fields, got {spec['cron']!r}")
    last = spec.get("lastDue")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < spec["firstDue"]):
        raise ValueError(f"lastDue: expected epoch ms >= firstDue, got {last!r}")
    return spec


def base_url(conn):
    """Sluice's HTTP base URL from the Connection: its host as Sluice wrote it (a full URL), or host/port/schema."""
    host = (conn.host or "").rstrip("/")
    if "://" in host:
        return host
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'http'}://{host}{port}"


def fire_due(url, group_id, as_of_ms, token, timeout=REQUEST_TIMEOUT_S):
    """POST {url}/sluice/v1/groups/{group}/fire-due {"asOf": ms}; returns Sluice's answer, raises on failure."""
    path = f"/sluice/v1/groups/{urllib.parse.quote(group_id, safe='')}/fire-due"
    request = urllib.request.Request(
        url + path,
        data=json.dumps({"asOf": as_of_ms}).encode("utf-8"),
        method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:500]
        message = f"Sluice answered FireDue of group {group_id} with HTTP {err.code}: {detail}"
        if err.code in PERMANENT_STATUSES:
            raise PermanentFailure(message) from None
        raise RuntimeError(message) from None


class PermanentFailure(Exception):
    """An answer no retry can change."""


def run_time(context):
    """The tick this run stands for: its logical date, or for a run without one (manual) when it was due."""
    logical = context.get("logical_date")
    if logical is not None:
        return logical
    return context["dag_run"].run_after


def make_task(group_id):
    @task(task_id="fire_due")
    def fire(**context):
        conn = Connection.get(CONNECTION_ID)
        as_of = _epoch_ms(run_time(context))
        try:
            answer = fire_due(base_url(conn), group_id, as_of, conn.password)
        except PermanentFailure as err:
            try:
                from airflow.exceptions import AirflowFailException
            except ImportError:  # pragma: no cover
                raise
            raise AirflowFailException(str(err)) from None
        instances = ((answer or {}).get("data") or {}).get("instances") or []
        log.info("Sluice: FireDue %s as of %s: %d instance(s)", group_id, as_of, len(instances))
        return [i.get("instanceId") for i in instances]

    return fire


def build_dag(group_id, spec):
    with DAG(
        dag_id=spec["dagId"],
        description=f"Sluice group {group_id}: calls FireDue on each tick (managed by Sluice)",
        # The covering cron in the schedule's own zone: one tick in [due, due + 60 s) of every due time.
        schedule=CronTriggerTimetable(spec["cron"], timezone=spec["timeZone"]),
        start_date=_utc(spec["firstDue"]),
        end_date=_utc(spec["lastDue"]) if spec.get("lastDue") is not None else None,
        # Sluice's catch-up policy decides what missed ticks mean; any later tick fires what is due.
        catchup=False,
        # One run at a time: a run retrying FireDue is not raced by the next tick, whose FireDue would
        # find the same windows anyway (a later as_of covers everything due before it).
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["sluice"],
    ) as dag:
        make_task(group_id)()
    return dag


def build_all(index_text):
    """One DAG per valid entry; an entry that does not fit is logged and skipped, the others still built."""
    dags = {}
    for group_id, spec in read_index(index_text).items():
        try:
            dags[PREFIX + group_id] = build_dag(group_id, check_spec(group_id, spec))
        except Exception as err:  # noqa: BLE001 - one bad entry must not hide every other DAG
            log.error("Sluice: group %s skipped, its entry in Variable %s does not fit: %s", group_id, INDEX_KEY, err)
    return dags


# Airflow collects the DAG objects found at module level.
globals().update(build_all(Variable.get(INDEX_KEY, default=None)))
