"""The cyclic garbage collector made rare while a long run works through many objects.

Left at its defaults, the collector walks every object that lives long (a scan's
kept readings and setups; an apply run's whole plan) again and again: a quarter
of a scan's CPU at 100k endpoints, and an eighth of an apply's, measured. Both
make few objects that outlive a step, and almost none in cycles, so while they
work it runs rarely, and what was made before (imports, the plan) is frozen out
of its walks.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

RARE_COLLECTIONS = (100_000, 50, 1000)


@contextmanager
def rare_collections() -> Iterator[None]:
    """The collector rare (as in a scan's worker) for a while, then as it was."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RARE_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
