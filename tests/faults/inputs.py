"""Hostile and clumsy input, each case judged: one line, no traceback, bounded, no secret.

A case is a command line against a seeded sandbox (its URL and a valid plan
made on it) and the files it names, which `Target.prepare` creates: devices,
FIFOs nobody writes, sparse files larger than any limit, other encodings,
nesting deeper than any parser's stack. Each runs twice, with the text and the
JSON audit log, since the audit log's `argv` is a channel of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.child import Observed, run

PASSWORD = "p@ssXQ-s3cr3t"  # in every URL a case builds on purpose
FRAGMENTS = ("ssXQ", "s3cr3t", "p@ss")
RSS_BOUND_MIB = 512  # a child past this read something without bound
MISSING_PORT = "1"  # nothing listens there: connections are refused at once


@dataclass
class Target:
    """A seeded sandbox database and the files the cases name."""

    url: str
    tmp: Path
    plan: Path

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def prepare(self) -> None:
        text = self.plan.read_text()
        writes: dict[str, bytes] = {
            "deep-array.json": b"[" * 100_000,
            "deep-object.json": b'{"a":' * 100_000,
            "huge-int.json": b'{"format": "bundle-migrate-plan", "version": ' + b"1" * 5000 + b"}",
            "latin-1.json": text.replace("}", ', "note": "caf\xe9"}', 1).encode("latin-1"),
            "utf-16.json": text.encode("utf-16"),
            "truncated.json": text[: len(text) // 2].encode(),
            "wrong-types.json": json.dumps({**json.loads(text), "items": "x"}).encode(),
            "deep.toml": b"a = " + b"[" * 100_000,
            "huge-int.toml": b"[auto]\nendpoints = []\nx = " + b"1" * 5000,
            "latin-1.toml": "[auto]\nendpoints = ['caf\xe9']\n".encode("latin-1"),
            "utf-16.toml": "[auto]\nendpoints = []\n".encode("utf-16"),
            "garbage.prom": b"\x00\xff not prometheus {{{\n",
        }
        for name, data in writes.items():
            (self.tmp / name).write_bytes(data)
        for name, size in (("sparse.json", 300 << 20), ("sparse.toml", 2 << 20)):
            with open(self.tmp / name, "wb") as handle:  # no disk, but too big to read whole
                handle.truncate(size)
        with open(self.tmp / "sparse.prom", "wb") as handle:
            handle.truncate(8 << 30)
        for name in ("fifo.json", "fifo.toml", "fifo.prom", "fifo-out.json", "fifo.keys"):
            os.mkfifo(self.tmp / name)
        keys = self.tmp / "open.keys"
        keys.write_text('team-a = "k3y-s3cr3t"\n')
        keys.chmod(0o644)
        (self.tmp / "zero.prom").symlink_to("/dev/zero")
        (self.tmp / "a-directory").mkdir()


Args = Callable[[Target], list[str]]


@dataclass(frozen=True)
class Case:
    name: str
    args: Args
    env: Callable[[Target], dict[str, str]] = field(default=lambda t: {})
    secrets: tuple[str, ...] = ()
    exits: frozenset[int] = frozenset({1})  # the statuses that mean "handled"
    error_line: bool = True  # stderr is one error line (and at most a hint)
    fast: bool = False  # also in the test suite's subset


def _url(auth: str, rest: str = f"127.0.0.1:{MISSING_PORT}/db") -> str:
    return f"postgresql://{auth}@{rest}"


def scan(*extra: str) -> Args:
    return lambda t: ["scan", "--database-url", t.url, *extra]


def scan_file(option: str, name: str) -> Args:
    return lambda t: ["scan", "--database-url", t.url, option, t.path(name)]


def apply_file(name: str) -> Args:
    return lambda t: ["apply", "--database-url", t.url, t.path(name)]


def execute_with(option: str, value: str) -> Args:
    """apply --execute of the valid plan through model engine's API, with one odd option."""
    return lambda t: [
        "apply",
        "--database-url",
        t.url,
        str(t.plan),
        "--execute",
        "--api-url",
        "http://127.0.0.1:1",
        option,
        value.format(tmp=t.tmp),
    ]


def reconcile_metrics(target: Callable[[Target], str]) -> Args:
    return lambda t: ["reconcile", "--database-url", t.url, "--metrics-file", target(t)]


CHANGES = frozenset({0, 2})  # a clean run: no change pending, or some

CASES: tuple[Case, ...] = (
    # Database URLs that do not parse, or parse into a password fragment as the host.
    Case(
        "url: @ in the password",
        lambda t: ["scan", "--database-url", _url(f"u:{PASSWORD}")],
        secrets=FRAGMENTS,
        fast=True,
    ),
    Case(
        "url: @ in the password, port after it",
        lambda t: ["scan", "--database-url", _url(f"u:{PASSWORD}:12")],
        secrets=FRAGMENTS,
    ),
    Case(
        "url: @ and / in the password",
        lambda t: ["scan", "--database-url", _url("u:p@ss/XQ-s3cr3t")],
        secrets=FRAGMENTS,
    ),
    Case(
        "url: port abc",
        lambda t: ["scan", "--database-url", _url("u:s3cr3t", "h:abc/db")],
        secrets=("s3cr3t",),
        fast=True,
    ),
    Case(
        "url: [::1/x",
        lambda t: ["scan", "--database-url", _url("u:s3cr3t", "[::1/x")],
        secrets=("s3cr3t",),
    ),
    Case(
        "url: raw space in the password (environment)",
        lambda t: ["scan"],
        env=lambda t: {"BUNDLE_MIGRATE_DATABASE_URL": _url("u:pa ss-s3cr3t")},
        secrets=("s3cr3t", "pa ss"),
        fast=True,
    ),
    Case(
        "url: raw space in the password (argument)",
        lambda t: ["scan", "--database-url", _url("u:pa ss-s3cr3t")],
        secrets=("s3cr3t", "pa ss"),
    ),
    Case(
        "url: password in the query, with a space",
        lambda t: [
            "scan",
            "--database-url",
            f"postgresql://u@127.0.0.1:{MISSING_PORT}/db?password=pa ss-s3cr3t",
        ],
        secrets=("s3cr3t", "pa ss"),
    ),
    Case(
        "url: 100 KB password",
        lambda t: ["scan", "--database-url", _url("u:" + "s3cr3t" * 16_000)],
        secrets=("s3cr3t",),
    ),
    Case(
        "url: not PostgreSQL",
        lambda t: ["scan", "--database-url", "mysql://u:s3cr3t@h/db"],
        secrets=("s3cr3t",),
    ),
    Case("url: not a URL", lambda t: ["scan", "--database-url", "not a url"]),
    Case(
        "url: bytes that are not UTF-8",
        lambda t: ["scan", "--database-url", os.fsdecode(b"postgresql://u@h/\xff")],
    ),
    # Options.
    Case("--threshold NaN", scan("--threshold", "NaN")),
    Case("--threshold Infinity", scan("--threshold", "Infinity")),
    Case("--threshold 1e999999999", scan("--threshold", "1e999999999")),
    Case("--threshold empty", scan("--threshold", "")),
    Case("--name $'\\xff\\xfe*'", scan("--name", os.fsdecode(b"\xff\xfe*"))),
    Case("--owner of 120 KB", scan("--owner", "a" * 120_000), exits=CHANGES, error_line=False),
    Case("--schema with a quote", scan("--schema", 'x"; drop table y; --')),
    Case(
        "rollback --run $'\\xff'",
        lambda t: ["rollback", "--database-url", t.url, "--run", os.fsdecode(b"\xff")],
    ),
    Case("usage: unknown option", scan("--frobnicate")),
    Case("usage: option without its value", scan("--threshold")),
    Case("usage: unknown command", lambda t: ["frobnicate"]),
    Case("usage: --log-format xml", lambda t: ["--log-format", "xml", "scan"]),
    # Plan files.
    Case("plan: nested 100,000 deep (array)", apply_file("deep-array.json"), fast=True),
    Case("plan: nested 100,000 deep (object)", apply_file("deep-object.json")),
    Case("plan: a 5,000-digit integer", apply_file("huge-int.json")),
    Case("plan: Latin-1", apply_file("latin-1.json")),
    Case("plan: UTF-16", apply_file("utf-16.json")),
    Case("plan: truncated", apply_file("truncated.json")),
    Case("plan: items of the wrong type", apply_file("wrong-types.json")),
    Case("plan: /dev/zero", lambda t: ["apply", "--database-url", t.url, "/dev/zero"], fast=True),
    Case("plan: /dev/urandom", lambda t: ["apply", "--database-url", t.url, "/dev/urandom"]),
    Case("plan: a FIFO nobody writes", apply_file("fifo.json"), fast=True),
    Case("plan: a directory", apply_file("a-directory")),
    Case("plan: 300 MB (sparse)", apply_file("sparse.json")),
    Case(
        "plan --from: /dev/zero", lambda t: ["plan", "--from", "/dev/zero", "--format", "markdown"]
    ),
    Case(
        "status --plan: a FIFO",
        lambda t: ["status", "--database-url", t.url, "--plan", t.path("fifo.json")],
    ),
    # Overrides files.
    Case("overrides: nested 100,000 deep", scan_file("--overrides", "deep.toml")),
    Case("overrides: a 5,000-digit integer", scan_file("--overrides", "huge-int.toml")),
    Case("overrides: Latin-1", scan_file("--overrides", "latin-1.toml")),
    Case("overrides: UTF-16", scan_file("--overrides", "utf-16.toml")),
    Case(
        "overrides: /dev/zero",
        lambda t: ["scan", "--database-url", t.url, "--overrides", "/dev/zero"],
    ),
    Case("overrides: a FIFO nobody writes", scan_file("--overrides", "fifo.toml")),
    Case("overrides: 2 MB (sparse)", scan_file("--overrides", "sparse.toml")),
    # Where reports go.
    Case(
        "-o into a missing directory",
        lambda t: ["scan", "--database-url", t.url, "-o", t.path("missing/report.json")],
    ),
    Case("-o into /proc", scan("-o", "/proc/report.json")),
    Case("-o /dev/full", scan("--format", "json", "-o", "/dev/full"), fast=True),
    Case("-o a directory", scan_file("-o", "a-directory")),
    Case("-o a FIFO nobody reads", scan_file("-o", "fifo-out.json")),
    Case("plan --out /dev/full", lambda t: ["plan", "--database-url", t.url, "--out", "/dev/full"]),
    # Model engine's API: its URL and the keys file.
    Case(
        "--api-url http://[::1/x",
        execute_with("--api-url", "http://[::1/x"),
        env=lambda t: {"BUNDLE_MIGRATE_API_KEY": "k3y-s3cr3t"},
        secrets=("s3cr3t",),
    ),
    Case(
        "--api-url with a port that is not one",
        execute_with("--api-url", "http://h:abc/"),
        env=lambda t: {"BUNDLE_MIGRATE_API_KEY": "k3y-s3cr3t"},
        secrets=("s3cr3t",),
    ),
    Case("--api-keys: a FIFO nobody writes", execute_with("--api-keys", "{tmp}/fifo.keys")),
    Case("--api-keys: /dev/zero", execute_with("--api-keys", "/dev/zero")),
    Case(
        "--api-keys: readable by others",
        execute_with("--api-keys", "{tmp}/open.keys"),
        secrets=("s3cr3t",),
    ),
    # The metrics file, read for the last success and then written.
    Case("--metrics-file /dev/full", reconcile_metrics(lambda t: "/dev/full"), fast=True),
    Case(
        "--metrics-file /dev/zero",
        reconcile_metrics(lambda t: "/dev/zero"),
        exits=CHANGES,
        error_line=False,
        fast=True,
    ),
    Case(
        "--metrics-file /dev/stdout | cat",
        reconcile_metrics(lambda t: "/dev/stdout"),
        exits=CHANGES,
        error_line=False,
        fast=True,
    ),
    Case(
        "--metrics-file: a symlink to /dev/zero",
        reconcile_metrics(lambda t: t.path("zero.prom")),
        exits=CHANGES,
        error_line=False,
    ),
    Case(
        "--metrics-file: 8 GiB previous file (sparse)",
        reconcile_metrics(lambda t: t.path("sparse.prom")),
        exits=CHANGES,
        error_line=False,
    ),
    Case(
        "--metrics-file: garbage previous file",
        reconcile_metrics(lambda t: t.path("garbage.prom")),
        exits=CHANGES,
        error_line=False,
    ),
    Case("--metrics-file: a FIFO nobody reads", reconcile_metrics(lambda t: t.path("fifo.prom"))),
)


@dataclass
class Judged:
    case: Case
    log_format: str
    observed: Observed
    traceback: bool
    unbounded: bool
    leaked: list[str]
    clean: bool


def _error_lines_ok(stderr: str) -> bool:
    """One `bundle-migrate: error:` line and at most a hint; JSON audit lines aside."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]
    if not lines or not lines[0].startswith("bundle-migrate: error: "):
        return False
    return len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Try '"))


def judge(case: Case, log_format: str, observed: Observed) -> Judged:
    text = observed.stdout + observed.stderr
    leaked = [s for s in case.secrets if s in text]
    unbounded = (
        observed.timed_out or observed.out_of_memory or observed.peak_rss_mib > RSS_BOUND_MIB
    )
    shaped = _error_lines_ok(observed.stderr) if case.error_line else "error" not in observed.stderr
    clean = (
        observed.exit_status in case.exits
        and not observed.traceback
        and not unbounded
        and not leaked
        and shaped
    )
    return Judged(case, log_format, observed, observed.traceback, unbounded, leaked, clean)


def run_case(case: Case, target: Target, log_format: str) -> Judged:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNDLE_MIGRATE_")}
    env.update(case.env(target))
    args = case.args(target)
    if log_format == "json":
        args = ["--log-format", "json", *args]
    return judge(case, log_format, run(args, env))


def run_cases(cases: tuple[Case, ...], target: Target) -> list[Judged]:
    results: list[Judged] = []
    for case in cases:
        for log_format in ("text", "json"):
            results.append(run_case(case, target, log_format))
    return results
