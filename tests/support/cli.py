"""Running the CLI in-process and judging a failure: one line on stderr, exit 1, no secret."""

from __future__ import annotations

from click.testing import CliRunner, Result

from migrate.cli import main


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """The whole command line, as a person types it; an escaping exception fails the test."""
    return CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)


def assert_one_line_error(
    result: Result, *fragments: str, secrets: tuple[str, ...] = (), hint: bool = False
) -> str:
    """Exit 1, one `bundle-migrate: error:` line (and a hint line with `hint`), no secret.

    Returns the error line.
    """
    assert result.exit_code == 1, (result.exit_code, result.output)
    err = result.stderr
    assert "Traceback" not in err
    for secret in secrets:
        assert secret not in err and secret not in result.stdout, f"{secret!r} leaked: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == (2 if hint else 1), err
    assert lines[0].startswith("bundle-migrate: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
