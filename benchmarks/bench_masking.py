"""Cost of masking secrets in adversarial text, against a linear floor and the old pattern.

    python benchmarks/bench_masking.py

`migrate.core.redact.mask` must stay linear: the audit log masks every
argument, and an argument is whatever a person (or a script gone wrong) typed.
For each shape and size this prints the time of `mask`, the floor (one pass of
str.count and str.lower over the same text: what any scan must at least cost),
and the pattern the audit log used before issue 12 (`\\w+://[^:/@\\s]*:[^@\\s]+@`),
which is quadratic: it is timed only up to 100 KB.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tabulate import tabulate

from migrate.core.redact import mask

OLD_URL = re.compile(r"(\w+://[^:/@\s]*:)([^@\s]+)(@)")
OLD_KV = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
OLD_LIMIT = 100_000

SHAPES: dict[str, Callable[[int], str]] = {
    "word characters (a long --owner)": lambda n: "a" * n,
    "'a://' repeated": lambda n: ("a://" * (n // 4 + 1))[:n],
    "'a:// ' repeated": lambda n: ("a:// " * (n // 5 + 1))[:n],
    "'x://a:' then b...": lambda n: ("x://a:" + "b" * n)[:n],
    '"password=\'" repeated': lambda n: ("password='" * (n // 10 + 1))[:n],
    "URLs with passwords and spaces": lambda n: ("postgresql://u:p@ss w0rd@h/db " * (n // 30 + 1))[
        :n
    ],
}


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def old_mask(text: str) -> str:
    return OLD_KV.sub(r"\1***", OLD_URL.sub(r"\1***\3", text))


def main() -> None:
    rows = []
    for name, make in SHAPES.items():
        for size in (10_000, 100_000, 1_000_000):
            text = make(size)
            floor = best_of(lambda t=text: (t.count("://"), t.lower().find("password")))
            new = best_of(lambda t=text: (mask(t), mask(t, token=True)))
            old = best_of(lambda t=text: old_mask(t), repeat=1) if size <= OLD_LIMIT else None
            rows.append(
                [
                    name,
                    f"{size:,}",
                    f"{floor * 1000:.2f}",
                    f"{new * 1000:.2f}",
                    "-" if old is None else f"{old * 1000:,.1f}",
                ]
            )
    headers = ["shape", "chars", "floor ms", "mask ms (both modes)", "old pattern ms"]
    print(tabulate(rows, headers, colalign=("left", "right", "right", "right", "right")))


if __name__ == "__main__":
    main()
