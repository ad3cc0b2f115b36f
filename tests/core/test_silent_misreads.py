"""Issue 12, item 7 (the reader's part): scripts the old reader misread without a word.

Each case is checked twice: the frozen pre-rewrite reader (tests/support/legacy)
still gets it wrong, which is what this test would have caught; the tool now
says what it cannot know, or reads it as bash does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from migrate.core import command as cmd
from migrate.core.classify import classify
from migrate.core.flags import RISK_FLAGS
from migrate.core.records import BundleRecord, EndpointRecord
from tests.support.legacy import command as legacy

SERVER = "python -m vllm_server --model model_files --port 5005 --gpu-memory-utilization 0.9"


def endpoint(script: str) -> EndpointRecord:
    command = ["/bin/bash", "-c", script]
    bundle = BundleRecord("bun_x", "streaming_enhanced_runnable_image", command, command, None)
    return EndpointRecord(
        id="end_x",
        name="ep",
        owner="team",
        status="READY",
        endpoint_type="streaming",
        metadata={"_llm": {"model_name": "llama-3-8b-instruct", "inference_framework": "vllm"}},
        current_bundle_id="bun_x",
        bundle=bundle,
        created_at=datetime(2025, 3, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "script",
    [
        f"{SERVER} $(echo --enforce-eager)",
        f"{SERVER} `echo --enforce-eager`",
        f"E=--enforce-eager; {SERVER} $E",
        f'E=--enforce-eager; {SERVER} "$E"',
        f"{SERVER} ${{EAGER:+--enforce-eager}}",
        f'eval "{SERVER} --enforce-eager"',
        f"eval {SERVER} --enforce-eager",
        f'CMD="{SERVER} --enforce-eager"; eval "$CMD"',
        f"{SERVER} --tensor-parallel-size 1 $EXTRA_ARGS",
        'python -m vllm_server --port 5005 --gpu-memory-utilization "$UTIL" --enforce-eager',
        f"{SERVER} {{--enforce-eager,--port=1}}",
        "$PYTHON -m vllm_server --port 5005 --enforce-eager",
    ],
)
def test_arguments_made_at_run_time_are_a_skip_flagged_indirect(script: str) -> None:
    d = classify(endpoint(script))
    assert d.action == "skip" and d.command_after is None
    assert "indirect-arguments" in d.flags and "indirect-arguments" in RISK_FLAGS
    assert "decided at run time" in d.reason or "run time" in d.reason
    with pytest.raises(cmd.CommandError) as err:
        cmd.parse_script(script)
    assert err.value.kind == cmd.INDIRECT_ARGUMENTS
    # Before: read as "no flag" (or with a guessed utilization), without a warning.
    try:
        old = legacy.parse_script(script)
    except legacy.CommandError:
        return  # the old reader refused this one too (eval in quotes), just not as indirect
    assert not old.enforce_eager or old.gpu_memory_utilization is None


def test_an_expansion_where_only_a_value_can_stand_is_read_as_that_value() -> None:
    """model engine's own shape: "$CHAT_TEMPLATE" after --chat-template is a value."""
    script = f'{SERVER} --chat-template "$CHAT_TEMPLATE" --enforce-eager'
    inv = cmd.parse_script(script)
    assert inv.enforce_eager and inv.get("--chat-template").texts() == ("$CHAT_TEMPLATE",)  # type: ignore[union-attr]
    assert classify(endpoint(script)).action == "drop-eager"


def test_crlf_utilization_is_read_as_vllm_reads_it() -> None:
    """bash passes "0.9\\r"; vLLM's float() ignores the whitespace: utilization 0.9."""
    script = (
        "s5cmd cp s3://b/m/* model_files\r\n"
        "python -m vllm_server --enforce-eager --gpu-memory-utilization 0.9\r\n"
    )
    old = legacy.parse_script(script)
    assert old.gpu_memory_utilization is None  # before: "flag without utilization"
    inv = cmd.parse_script(script)
    assert inv.gpu_memory_utilization == Decimal("0.9")
    d = classify(endpoint(script))
    assert d.provenance == "injected" and d.action == "drop-eager", d.reason
    assert d.command_after == script.replace(" --enforce-eager", "")


def test_crlf_flag_that_vllm_would_reject_is_not_read_as_absent() -> None:
    script = f"{SERVER} --enforce-eager\r\n"
    assert not legacy.parse_script(script).enforce_eager  # before: silently "no flag"
    with pytest.raises(cmd.CommandError) as err:
        cmd.parse_script(script)
    assert err.value.kind == cmd.AMBIGUOUS_ENFORCE_EAGER
    assert "carriage return" in err.value.reason or "CRLF" in err.value.reason
    assert classify(endpoint(script)).action == "skip"


def test_crlf_strict_mode_line_ends_the_script_before_the_server() -> None:
    """``set -euo pipefail\\r`` names no option; under -e bash exits right there."""
    script = "set -euo pipefail\r\npython -m vllm_server --enforce-eager --port 5005\r\n"
    with pytest.raises(cmd.CommandError) as err:
        cmd.parse_script(script)
    assert err.value.kind == cmd.NO_VLLM_INVOCATION and "carriage return" in err.value.reason
    assert classify(endpoint(script)).action == "skip"


@pytest.mark.parametrize(
    "setup",
    ["set ''", "set -e ''", "set -o ''", "set -eo ''", "set -e -o ''", "set -- ''", 'set -e ""'],
)
def test_an_empty_word_after_set_is_read_as_bash_reads_it(setup: str) -> None:
    """``set ''`` sets $1; ``set -o ''`` lists the options: neither is an option that fails.
    Whether -e is on decides whether the failing set before the server ends the script.
    Real bash says which: it runs the script with the server stubbed."""
    import subprocess

    script = f"{setup}; set -Z; python -m vllm_server --port 5005"
    stub = "python() { echo STARTED; }; "
    ran = subprocess.run(["bash", "-c", stub + script], capture_output=True, text=True, check=False)
    reached = "STARTED" in ran.stdout
    try:
        invocation = cmd.parse_script(script)
    except cmd.CommandError as err:
        assert not reached, (script, err.kind, err.reason)
        assert err.kind == cmd.NO_VLLM_INVOCATION
    else:
        assert reached, script
        assert invocation.get("--port") is not None
