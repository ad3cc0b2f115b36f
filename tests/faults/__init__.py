"""The fault matrix: hostile inputs, kills, concurrent runs and dropped connections, counted.

Issue 12's adversarial test, kept: each case runs the real program in a child
process (its address space capped, its time bounded) against sandbox
databases, and the matrix prints what matters to an operator:

    kills attempted / survived, half-changed endpoints (must be 0)
    concurrent runs attempted / refused
    dropped connections / runs left consistent
    inputs tried / clean errors, tracebacks (0), unbounded reads (0), secrets leaked (0)
    edited plans tried / refused, wrong writes (0)

The whole matrix: `python -m tests.faults` (see its --help). A fast subset
runs in the test suite (tests/faults/test_matrix.py).
"""
