"""The stand-in's model engine: endpoint rows in the database, builds on timers, simulated pods.

Rows are model engine's own tables in the sandbox database: the status a PUT
sets is the `endpoint_status` column the tool reads, and a recreation writes a
real bundle row. Pods exist only here, in memory: each build rolls a new
generation that starts after `start_seconds`, or crash-loops (status still
READY, one worker unavailable, the old pods still serving) when the behaviour
says this endpoint runs out of memory without `--enforce-eager`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.core import command as cmd
from migrate.core.policy import new_rule, to_bool, to_decimal
from migrate.sandbox.standin.behaviour import Behaviour, matches_any
from migrate.store.connection import table_columns
from migrate.store.rows import column_type, insert_bundle_copy, qident


class NotFound(Exception):
    """No such LLM endpoint, or not the caller's team's."""


@dataclass
class Pods:
    """One endpoint's simulated deployment."""

    replicas: int
    # When the current generation started (None: the pods that ran before any build).
    started: float | None = None
    crashloop: bool = False
    # The bundle the current generation was built from, and whether it runs eager.
    bundle: str | None = None
    eager: bool | None = None


@dataclass
class Request:
    """One request as the stand-in saw it, for tests and the demo."""

    at: float
    method: str
    endpoint: str
    team: str | None
    status: int
    note: str = ""


@dataclass
class Service:
    engine: Engine
    schema: str
    behaviour: Behaviour
    clock: Any = time.monotonic
    pods: dict[str, Pods] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    races: list[str] = field(default_factory=list)
    _timers: list[threading.Timer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tasks: Any = field(default_factory=lambda: itertools.count(1))
    # Model engine's ORM stamps last_updated_at on every update of the row.
    _touch: str = ""

    def __post_init__(self) -> None:
        if "last_updated_at" in table_columns_of(self.engine, self.schema, "endpoints"):
            self._touch = ", last_updated_at = clock_timestamp()"

    # Reading -------------------------------------------------------------------------

    def _row(self, conn: Any, name: str, team: str | None) -> dict[str, Any]:
        row = (
            conn.execute(
                sa.text(
                    "SELECT e.*, CAST(e.endpoint_metadata AS jsonb) AS meta, "
                    "b.name AS bundle_name, b.runnable_image_command AS command, "
                    "b.streaming_enhanced_runnable_image_streaming_command AS streaming "
                    f"FROM {qident(self.schema)}.endpoints e "
                    f"LEFT JOIN {qident(self.schema)}.bundles b ON b.id = e.current_bundle_id "
                    "WHERE e.name = :n AND CAST(e.endpoint_metadata AS jsonb) ? '_llm'"
                ),
                {"n": name},
            )
            .mappings()
            .first()
        )
        # Another team's endpoint answers exactly like a missing one.
        if row is None or team is None or row["owner"] != team:
            raise NotFound(name)
        return dict(row)

    def describe(self, name: str, team: str | None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._row(conn, name, team)
        llm = (row["meta"] or {}).get("_llm", {})
        status = row["endpoint_status"]
        return {
            "id": row["id"],
            "name": row["name"],
            "model_name": llm.get("model_name"),
            "source": llm.get("source", "hugging_face"),
            "status": status,
            "inference_framework": llm.get("inference_framework"),
            "inference_framework_image_tag": llm.get("inference_framework_image_tag"),
            "num_shards": llm.get("num_shards"),
            "spec": {
                "id": row["id"],
                "name": row["name"],
                "endpoint_type": row.get("endpoint_type"),
                "bundle_name": row["bundle_name"],
                "status": status,
                "status_reason": self.reasons.get(name) or row.get("status_reason"),
                "created_by": row.get("created_by"),
                "deployment_state": self._deployment_state(name),
            },
        }

    def _deployment_state(self, name: str) -> dict[str, Any]:
        b = self.behaviour
        min_workers = 0 if matches_any(name, b.scaled_to_zero) else b.replicas
        state: dict[str, Any] = {
            "min_workers": min_workers,
            "max_workers": max(1, b.replicas),
            "per_worker": 1,
            "concurrent_requests_per_worker": 1,
        }
        if matches_any(name, b.multinode):
            # LeaderWorkerSet: placeholders, whatever the pods do.
            return {**state, "available_workers": b.replicas, "unavailable_workers": 0}
        if min_workers == 0:
            return {**state, "available_workers": 0, "unavailable_workers": 0}
        pods = self.pods.get(name) or Pods(replicas=b.replicas)
        starting = pods.started is not None and self.clock() < pods.started + b.start_seconds
        new_pod_down = pods.crashloop or starting
        # During a rolling update the old pods keep serving.
        return {
            **state,
            "available_workers": pods.replicas,
            "unavailable_workers": 1 if new_pod_down else 0,
        }

    # Writing -------------------------------------------------------------------------

    def update(self, name: str, team: str | None, body: dict[str, Any]) -> str:
        """PUT: maybe rebuild the bundle, set UPDATE_PENDING, queue the build; the task id."""
        with self.engine.begin() as conn:
            row = self._row(conn, name, team)
            if row["endpoint_status"] in ("UPDATE_PENDING", "UPDATE_IN_PROGRESS"):
                # Model engine only logs this and races the running build.
                self.races.append(name)
            if body.get("force_bundle_recreation"):
                self._recreate(conn, row, body)
            conn.execute(
                sa.text(
                    f"UPDATE {qident(self.schema)}.endpoints SET endpoint_status = "
                    f"'UPDATE_PENDING'{self._touch} WHERE id = :id"
                ),
                {"id": row["id"]},
            )
        self.reasons.pop(name, None)
        timer = threading.Timer(self.behaviour.build_seconds, self._build, args=(name,))
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()
        return f"task_{next(self._tasks)}"

    def _recreate(self, conn: Any, row: dict[str, Any], body: dict[str, Any]) -> None:
        """A new bundle from the stored args (or, for a legacy endpoint, the parsed command)."""
        meta = row["meta"] or {}
        llm = meta.get("_llm", {})
        command = row["command"]
        inv = cmd.parse_command(command)
        stored = llm.get("vllm_additional_args")
        args: dict[str, Any] = dict(stored) if isinstance(stored, dict) else _parsed_args(inv)
        args.update({k: v for k, v in body.items() if k not in _NOT_VLLM_ARGS})
        explicit = to_bool(args.get("enforce_eager"))
        utilization = to_decimal(args.get("gpu_memory_utilization"))
        if utilization is None:
            utilization = inv.gpu_memory_utilization
        script = cmd.set_enforce_eager(inv, new_rule(explicit, utilization))
        new_command = [command[0], command[1], script]
        streaming = row.get("streaming")
        new_id = insert_bundle_copy(
            conn,
            self.schema,
            row["current_bundle_id"],
            command=new_command,
            streaming=new_command if streaming is not None else None,
            mark=None,
        )
        llm = {**llm, "vllm_additional_args": args}
        meta_type = column_type(conn, self.schema, "endpoints", "endpoint_metadata")
        conn.execute(
            sa.text(
                f"UPDATE {qident(self.schema)}.endpoints SET current_bundle_id = :b, "
                f"endpoint_metadata = CAST(CAST(:m AS jsonb) AS {meta_type}) WHERE id = :id"
            ),
            {"b": new_id, "m": json.dumps({**meta, "_llm": llm}), "id": row["id"]},
        )

    def _build(self, name: str) -> None:
        """The build queued by a PUT ends: the pods roll to the record's current bundle."""
        failure = self.behaviour.build_failure(name)
        status = "UPDATE_FAILED" if failure else "READY"
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    sa.text(
                        f"UPDATE {qident(self.schema)}.endpoints e SET endpoint_status = :s"
                        f"{self._touch} "
                        f"FROM {qident(self.schema)}.bundles b WHERE e.name = :n "
                        "AND CAST(e.endpoint_metadata AS jsonb) ? '_llm' "
                        "AND b.id = e.current_bundle_id RETURNING b.runnable_image_command, b.id"
                    ),
                    {"s": status, "n": name},
                ).first()
        except sa.exc.SQLAlchemyError:
            return  # the sandbox is shutting down
        if row is None:
            return
        if failure:
            self.reasons[name] = failure
            return
        try:
            eager = cmd.parse_command(row[0]).enforce_eager
        except cmd.CommandError:
            eager = True
        self.pods[name] = Pods(
            replicas=self.behaviour.replicas,
            started=self.clock(),
            crashloop=self.behaviour.crashloops(name) and not eager,
            bundle=row[1],
            eager=eager,
        )

    def stop(self) -> None:
        self.behaviour.stopping.set()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    def record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)


_NOT_VLLM_ARGS = frozenset(
    {
        "force_bundle_recreation",
        "inference_framework",
        "min_workers",
        "max_workers",
        "per_worker",
        "labels",
        "metadata",
    }
)


def _parsed_args(inv: cmd.VllmInvocation) -> dict[str, Any]:
    """What a legacy recreation reads back out of the command: every flag, eager included."""
    args: dict[str, Any] = {}
    for key, texts in inv.as_dict().items():
        if key in ("model", "served_model_name", "port", "host"):
            continue
        args[key] = True if not texts else texts[0] if len(texts) == 1 else list(texts)
    return args


def table_columns_of(engine: Engine, schema: str, table: str) -> list[str]:
    with engine.connect() as conn:
        return table_columns(conn, schema, table)
