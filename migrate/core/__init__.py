"""The pure core: read a start command, decide an endpoint, stage a plan. No I/O.

Nothing here imports another room of the package, a database driver or an
HTTP client (import-linter checks it): every decision the tool makes can be
tested on plain values, and a dry run and a real run decide alike.
"""
