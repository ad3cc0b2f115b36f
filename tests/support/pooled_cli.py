"""bundle-migrate with the worker pool's thresholds lowered: a few hundred rows reach the pool.

With BM_TEST_SLOW_CLASSIFY=SECONDS every classification sleeps that long, in the
workers too (a spawned worker imports this file again as its main module), so a
test can catch them busy.
"""

import os
import time

from migrate.scan import workers

workers.SMALL_FLEET = 20
workers.CHUNK = 7

_slow = float(os.environ.get("BM_TEST_SLOW_CLASSIFY", "0"))
if _slow:
    _classify = workers.classify

    def _slow_classify(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(_slow)
        return _classify(*args, **kwargs)

    workers.classify = _slow_classify

if __name__ == "__main__":
    import signal

    # As launched from a terminal: a shell that starts a job in the background (CI
    # runners do) leaves SIGINT ignored, and the child would inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from migrate.cli.app import main

    main(prog_name="bundle-migrate")
