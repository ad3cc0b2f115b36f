"""``bundle-migrate demo``: a narrated rehearsal of a whole rollout on a throwaway sandbox.

Each step runs the real click command in this process with the arguments a
person would type (shown with a ``$`` prompt), against the sandbox's URL in
``BUNDLE_MIGRATE_DATABASE_URL``. The demo adds only narration and a check of
each exit status, so a demo that passes proves the installed tool works. The
command line hands the demo a function that runs one command (``invoke``), so
the sandbox never imports the CLI.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from migrate.sandbox import lifecycle as sb
from migrate.sandbox.api import ApiSettings
from migrate.store.connection import URL_ENV

_STEPS = 8
API_URL_ENV = "BUNDLE_MIGRATE_API_URL"


# Runs `bundle-migrate ARGS` through the real command line; returns its exit status.
Invoke = Callable[[list[str]], int]


class _Demo:
    def __init__(self, invoke: Invoke) -> None:
        self.invoke = invoke
        self.step = 0
        self.ok = True
        self.interrupted = False

    def title(self, text: str) -> None:
        self.step += 1
        click.echo(f"\n[{self.step}/{_STEPS}] {text}")

    def say(self, text: str) -> None:
        for line in text.strip().splitlines():
            click.echo(f"    {line}")

    def run(self, *args: str, expect: tuple[int, ...] = (0,)) -> int:
        """Run ``bundle-migrate ARGS`` through the real CLI and check its exit status."""
        click.echo(f"\n$ bundle-migrate {shlex.join(args)}")
        code = self.invoke(list(args))
        # A command swallows Ctrl-C/SIGTERM into an exit status (130, or click's 1
        # "Aborted!"); the demo must stop there, not go on to the next step.
        if self.interrupted or code == 130:
            raise KeyboardInterrupt
        if code not in expect:
            self.ok = False
            click.echo(f"demo: FAILED: exit status {code}, expected {expect}", err=True)
        else:
            click.echo(f"(exit status {code})")
        return code


@contextmanager
def _scene(url: str, api_url: str) -> Iterator[Path]:
    """The user's shell for the demo: both URLs exported, a scratch working directory."""
    exported = {URL_ENV: url, API_URL_ENV: api_url}
    saved_env, saved_cwd = {k: os.environ.get(k) for k in exported}, os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bundle-migrate-demo-") as work:
        os.environ.update(exported)
        os.chdir(work)
        try:
            yield Path(work)
        finally:
            os.chdir(saved_cwd)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextmanager
def _interrupts(demo: _Demo) -> Iterator[None]:
    """Ctrl-C and SIGTERM (kill, a CI timeout) unwind through the finally that stops the server."""

    def handler(signum: int, frame: Any) -> None:
        demo.interrupted = True
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _examples(endpoints: list[dict[str, Any]]) -> list[str]:
    """One endpoint per provenance, to show how decisions are explained."""
    seen: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        seen.setdefault(e.get("provenance") or "not vLLM", e)
    return [
        f"{e['endpoint_name']} [{prov}] -> {e['action']}: {e['reason']}"
        for prov, e in sorted(seen.items())
    ]


def _summary_line(summary: dict[str, Any]) -> str:
    actions = ", ".join(f"{a} {n}" for a, n in summary["actions"].items() if n)
    return f"{summary['endpoints']} LLM endpoints: {actions}"


def run_demo(
    invoke: Invoke,
    endpoints: int = 120,
    seed: int = sb.DEFAULT_SEED,
    schema_version: str = "2026",
) -> bool:
    """Run the narrated rehearsal; True when every step exited as it should."""
    demo = _Demo(invoke)
    click.echo("bundle-migrate demo: a whole rollout rehearsed on a throwaway sandbox database")
    demo.title("Start a sandbox: embedded PostgreSQL with model engine's tables and a fleet")
    with _interrupts(demo):
        box = sb.start(
            None,
            endpoints=endpoints,
            seed=seed,
            schema_version=schema_version,
            progress=lambda m: demo.say(m),
            api=ApiSettings(build_seconds=0.5, start_seconds=1.0),
        )
        try:
            assert box.api is not None
            demo.say(
                f"sandbox data in {box.data_dir}\n"
                f"export {URL_ENV}={shlex.quote(box.url)}\n"
                f"export {API_URL_ENV}={box.api.url}   # a model engine stand-in\n"
                "(the commands below read both URLs from those variables)"
            )
            with _scene(box.url, box.api.url):
                _rollout(demo, box.api)
        finally:
            # No second interrupt may cut the shutdown short and leave a server behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            sb.shutdown(box)
            click.echo(f"\nsandbox stopped; {box.data_dir} deleted, nothing left running")
    click.echo("demo finished: " + ("every step did what it should" if demo.ok else "FAILED"))
    return demo.ok


# Health checks shortened for a demo (the defaults are 10 s, 60 s and 1800 s).
_WATCH = ("--act-as-owner", "--poll-interval", "0.5", "--settle", "2", "--health-timeout", "8")


def _rollout(demo: _Demo, api: Any) -> None:
    demo.title("Scan: decide, per vLLM endpoint, whether --enforce-eager was injected")
    demo.say(
        "Read-only, one snapshot. With --detailed-exitcode, exit status 2 means some\n"
        "endpoints would change (as terraform plan); without it, pending changes exit 0.\n"
        "JSON here; the default is a table."
    )
    demo.run("scan", "--format", "json", "-o", "scan.json", "--detailed-exitcode", expect=(0, 2))
    before = json.loads(Path("scan.json").read_text(encoding="utf-8"))
    demo.say(_summary_line(before["summary"]))
    demo.say("How each decision is explained (one endpoint per provenance):")
    for line in _examples(before["endpoints"]):
        demo.say("  " + line)

    demo.title("Plan: a staged, reviewable plan file, rendered for a change ticket")
    made = demo.run(
        "plan", "--out", "plan.json", "--format", "markdown", "--detailed-exitcode", expect=(0, 2)
    )
    if made == 0:
        demo.say("Nothing to change in this fleet: the rollout steps are skipped.")
        return
    plan = json.loads(Path("plan.json").read_text(encoding="utf-8"))
    victim = _large_victim(plan)

    demo.title("Apply the canary: a dry run with its diff, then --execute through model engine")
    demo.say(
        "The dry run asks model engine (read-only) whether each endpoint is reachable as\n"
        "its owner. --execute writes the new bundle row, PUTs the endpoint through\n"
        "model engine's API and watches it until READY with no unavailable worker,\n"
        "held for the settle time (shortened here: --settle 2 --health-timeout 8)."
    )
    demo.run("apply", "plan.json", "--stage", "1", "--act-as-owner")
    demo.run("apply", "plan.json", "--stage", "1", "--execute", *_WATCH)

    demo.title("Status: runs and the plan's progress per stage")
    demo.run("status")
    demo.run("status", "--plan", "plan.json")

    demo.title("The other stages, 8 redeploys at a time; one large model cannot do without eager")
    if victim is None:
        demo.say("This fleet has no large model that loses eager: nothing to catch.")
    else:
        # The stand-in plays the out-of-memory: this endpoint's pods crash-loop once the
        # flag is gone, while model engine still says READY.
        api.behaviour.crashloop_without_eager = (victim,)
        demo.say(
            f"{victim} runs out of memory capturing CUDA graphs once --enforce-eager is\n"
            "gone: model engine still reports READY, only unavailable workers show it.\n"
            "Watch the tool catch it, roll it back at once and stop the rollout (exit 1)."
        )
    expect = (1,) if victim is not None else (0, 1)
    demo.run(
        "apply", "plan.json", "--execute", "--all-stages", "--parallel", "8", *_WATCH, expect=expect
    )
    demo.run("status", "--plan", "plan.json")
    if victim is not None:
        demo.say(
            f"{victim} is back on its old command and healthy; the plan is aborted:\n"
            "applying it again needs --retry-aborted, or a new plan with an override\n"
            "that keeps eager for it."
        )

    demo.title("Roll back everything: old bundles, exact metadata, redeployed and watched")
    demo.run("rollback", "--plan", "plan.json", "--execute", "--parallel", "8", *_WATCH)

    demo.title("Check: the fleet is where it started")
    demo.run("scan", "--format", "json", "-o", "scan-after.json")
    after = json.loads(Path("scan-after.json").read_text(encoding="utf-8"))
    same = [(e["endpoint_id"], e["action"], e["command_after"]) for e in before["endpoints"]] == [
        (e["endpoint_id"], e["action"], e["command_after"]) for e in after["endpoints"]
    ]
    if same:
        demo.say("Same decisions and same proposed commands for every endpoint as before.")
    else:
        demo.ok = False
        demo.say("FAILED: the scan after the rollback differs from the first one.")


def _large_victim(plan: dict[str, Any]) -> str | None:
    """The first READY large model that loses eager in the plan's last stage, if any."""
    for item in plan["items"]:
        large = any(f.startswith(("large-model-", "unknown-size-")) for f in item["flags"])
        ready = "not-ready" not in item["flags"]
        last = item["stage"] == len(plan["stages"])
        if large and ready and last and item["action"] == "drop-eager":
            return str(item["endpoint_name"])
    return None
