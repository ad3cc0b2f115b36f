"""A setup read once and reused reads exactly as the whole script read from scratch.

The reader keeps the reading of a long setup before the server (model engine's
model-cache program) and reuses it for every script whose setup differs only
inside single-quoted strings or in a cache fingerprint. These tests read model
engine's model-cache scripts, and variants made to share or break that key, both
ways and require the same answer: the same invocation, spans and edits, or the
same refusal with the same reason.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from migrate.core import command as cmd
from migrate.core import command_edit, command_locate
from migrate.core import command_reading as reading
from migrate.core.command_locate import _find
from migrate.sandbox import synth
from tests.support import script_fuzz

# Put inside a single-quoted string of the setup: the setup keeps its key. Plain
# text inside a real string; where the "string" was no string at all (an
# apostrophe in double quotes, a comment, a here-document...) or names the
# command ('exit' 1), it changes what bash does, and the kept reading must not
# be reused.
_INSIDE = [
    "x",
    '"',
    ";",
    "\n",
    "$(",
    "`",
    "\\",
    "#",
    "&&",
    " ",
    "}",
    "exit",
    "exec",
    "-e",
    "exit 1;",
]
# Statements put into the setup first, so that its key has such "strings".
_SEEDS = [
    "",
    "echo \"it's\" 'b'",
    "true\n# it's 'x'\ntrue",
    "'true' 1",
    "set '-u'",
    "echo $'a\\'b' 'c'",
    "echo `echo 'x'` 'y'",
    "cat <<'EOF'\nit's 'a'\nEOF",
    "exit 3",
    "set -e",
    "set -euo pipefail\r",
    "false",
    "2>&1x true",
    "f() { 'python' -m vllm_server --port 1; }",
    # Double quotes at top level: the key keeps their text, so the reading is reused.
    'export CHAT_TEMPLATE=$(echo "e3sgYm9z" | base64 --decode)',
    '"exit" 4',
    'set "-e"; "false"',
    'echo "x=0123456789abcdef0123456789abcdef0123" "exec"',
    # A second server that no mention count sees: bash decodes the name.
    "python -m $'vllm_server' --port 1",
    'python -m $"vllm_server" --port 1',
]
# The vLLM start wrapped so that the cut before it is no place where bash ends a
# command: the kept reading of the text before it must not be used.
_CUTS = [
    "echo note # x;{}",
    "echo a\\;{}",
    "cat <<EOF\nx;{}\nEOF",
    "echo 'x;{}'",
    'echo "$(true;{})"',
    "true\\\n;{}",
]
# (kept setup, another setup): the same key, but bash reads them differently.
_COLLIDING = [
    ('echo "a\'b" "c\'d"', 'echo "a\'b"; exit 1; echo "c\'d"'),  # a quote in quotes
    ("true # it's\ntrue #'\ntrue", "true # it's\nexit 1 #'\ntrue"),  # a quote in a comment
    ("'true' 1", "'exit' 1"),  # the command itself is in quotes
    ("true 2>&'1'", "true 2>&'1x'"),  # a redirection bash cannot make, under set -e
    ("set '-u'", "set '-x;'"),  # a set that fails, under set -e
]
# ... and pairs that differ outside single-quoted strings: a key must tell them apart.
_APART = [
    ("set +e;set -a;set -Z", "set +e;set -e;set -Z"),
    ('"true" 1', '"exit" 1'),  # double quotes are kept in the key
    ('set +e;set "-u";set -Z', 'set +e;set "-e";set -Z'),
]
_PLAIN_STRING = re.compile(r"'[^']*'")
_HEX = re.compile(r"(?<==)[0-9a-f]{32,}")


@cache
def _model_cache_scripts() -> list[str]:
    scripts = {
        synth.build_script(version)
        for spec in synth.random_fleet(1500, seed=11)
        for version in (*spec.superseded, spec)
        if version.is_vllm and version.generation >= "G"
    }
    long = sorted(s for s in scripts if len(s.rpartition(";")[0]) > reading._SETUP_MIN)
    assert len(long) > 50
    return long


def _reading(script: str) -> Any:
    """Everything a caller can learn from the reading: the invocation and its edits."""
    try:
        inv = reading._parse(script)
        assert inv.script is script
    except cmd.CommandError as err:
        return ("refused", err.kind, err.reason)
    edits = []
    for on in (False, True):
        try:
            edits.append(cmd.set_enforce_eager(inv, on))
        except cmd.CommandError as err:
            edits.append(("refused", err.kind, err.reason))
    spans = (inv.insert_at, inv.word_spans, inv.command_end, inv.nested)
    return (inv, spans, inv.enforce_eager, inv.gpu_memory_utilization, edits)


def _keep(script: str) -> None:
    """Read the script as a fleet's second endpoint with it would: its server command's
    reading is then kept (migrate.core.recurring keeps what is seen twice)."""
    _reading(script)
    _reading(script)


def _from_scratch(script: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        # Read whole: no setup's kept reading, no server command read in another script,
        # in the edits' checks too.
        patch.setattr(reading, "_parse", lambda script: reading._read(script, 0))
        patch.setattr(command_edit, "_parse", lambda script: reading._read(script, 0))
        return _reading(script)


def _seeded(rng: random.Random, script: str) -> Iterator[str]:
    """The script, and the script with a seed statement in its setup."""
    steps = script.split(";")
    for seed in rng.sample(_SEEDS, 4):
        if not seed:
            yield script
            continue
        at = rng.randrange(1, len(steps) - 1)
        yield ";".join([*steps[:at], seed, *steps[at:]])


def _variants(rng: random.Random, base: str) -> Iterator[str]:
    """Scripts whose setup shares the base's key, and whose cut is in no safe place."""
    for _ in range(4):
        m = rng.choice(list(_PLAIN_STRING.finditer(base)))
        inside = "".join(rng.choice(_INSIDE) for _ in range(rng.randint(1, 3)))
        yield base[: m.start() + 1] + inside + base[m.end() - 1 :]
    yield _HEX.sub(lambda m: "".join(rng.choice("0123456789abcdef") for _ in m.group()), base)
    head, _, start = base.rpartition(";")
    yield head + ";" + rng.choice(_CUTS).format(start)
    yield script_fuzz.mutate(rng, base)


def test_model_cache_scripts_reuse_their_setup() -> None:
    reading._setups.clear()
    reading._tails.clear()
    scripts = _model_cache_scripts()
    for script in scripts:
        reading._parse(script)
    reusable = [k for k, summary in reading._setups.items() if summary is not None]
    # Model engine's model-cache program is the same for every endpoint but for
    # its strings and fingerprint: a few shapes, each read once.
    assert 1 <= len(reusable) <= len(reading._setups) <= 16


def test_reused_setups_read_as_the_whole_script(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    reads: list[str] = []
    reused: list[str] = []
    real_setup, real_read = reading._setup, reading._read_setup

    def read(setup: str) -> Any:
        reads.append(setup)
        return real_read(setup)

    def setup(script: str, end: int) -> Any:
        before = len(reads)
        summary = real_setup(script, end)
        if summary is not None and len(reads) == before:
            reused.append(script)
        return summary

    monkeypatch.setattr(reading, "_read_setup", read)
    monkeypatch.setattr(reading, "_setup", setup)
    compared = 0
    for script in _model_cache_scripts()[:100]:
        for base in _seeded(rng, script):
            reading._setups.clear()
            reading._tails.clear()
            _keep(base)  # the setup's reading is now kept, when it can be, and the server's
            for variant in [base, *_variants(rng, base)]:
                assert _reading(variant) == _from_scratch(variant, monkeypatch), variant
                compared += 1
    assert compared > 3000
    assert len(set(reused)) > 300  # the comparison did exercise the reused path


@pytest.mark.parametrize(("kept", "other"), _COLLIDING + _APART)
def test_setups_that_read_differently_never_share_a_reading(
    kept: str, other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _model_cache_scripts()[0]
    head, _, start = script.rpartition(";")
    first, second = (f"{head};{seed};{start}" for seed in (kept, other))
    keys = {
        reading._setup_key(s[: len(head) + len(seed) + 2])
        for s, seed in ((first, kept), (second, other))
    }
    assert len(keys) == (2 if (kept, other) in _APART else 1)
    reading._setups.clear()
    reading._tails.clear()
    _keep(first)  # its server command's reading kept: the second script may take it
    assert not isinstance(_reading(first)[0], str)  # read, not refused
    assert len(reading._setups) == 1  # its setup was looked at (and kept if it may be reused)
    assert _reading(second) == _from_scratch(second, monkeypatch)
    assert _reading(second)[0] == "refused"


# Setups put before a server command that another script has had read: after some
# bash reaches the command as it did there (the kept reading is taken, moved), after
# others not, or not alike (the script is read whole). Each ends where bash may end
# a command, or seems to.
_SHORT_SETUPS = [
    "true;",
    "set -e;",
    "set -euo pipefail;",
    "set -euo pipefail\r;",  # the option fails, -e already on: bash exits there
    "set -e;false;",
    "set +e;false;",
    "set -e;2>&1x true;",  # a redirection bash cannot make, under -e
    "exit 0;",
    "exec true;",
    "export AZCOPY_AUTO_LOGIN_TYPE=WORKLOAD;",
    './s5cmd cp --include "*.json" s3://a/ft/0123abcd/m-ft-1a2b3c/* model_files;',
    "gsutil -m cp -r gs://w/hf-llm/llama-3-8b/* model_files;",
    "echo 'a;",  # the cut inside a string
    'echo "a;',
    "echo \\;",
    "true\\\n",
    "# note;",
    "true # note;",
    "cat <<EOF\na;\nEOF\n",
    "if true; then\n",
    "f() {\n",
    "(true;",
    "{ true;",
    "true |\n",
    "true &&\n",
    "case a in a) true;;",
    "bash -c 'python -m vllm_se\"\"rver --port 1';",  # a second server, spelled loosely
    "python -m vllm_serv\\er --port 1;",
    "true\n",
    "set -e\n",
    "\n",
    # A second server that no mention count sees: bash decodes the name.
    "python -m $'vllm_server';",
    'python -m $"vllm_server";',
    "bash -c $'python -m vllm_\\x73erver';",
]


def _servers() -> list[str]:
    """Server commands (with what follows them) of the synthetic fleet's scripts."""
    tails = set()
    for spec in synth.random_fleet(400, seed=5):
        for version in (*spec.superseded, spec):
            if not version.is_vllm:
                continue
            script = synth.build_script(version)
            mention = re.search(r"python3? -m vllm_", script)
            if mention is not None:
                tails.add(script[mention.start() :])
    return sorted(tails)


def test_a_server_command_read_in_another_script_reads_as_the_whole_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(13)
    servers = _servers()
    assert len(servers) > 40
    taken: list[str] = []
    real_moved = reading._moved

    def moved(invocation: Any, script: str, by: int) -> Any:
        taken.append(script)
        return real_moved(invocation, script, by)

    monkeypatch.setattr(reading, "_moved", moved)
    compared = 0
    for server in rng.sample(servers, 40):
        for tail in (server, script_fuzz.mutate(rng, server)):
            for first in rng.sample(_SHORT_SETUPS, 6):
                reading._setups.clear()
                reading._tails.clear()
                _keep(first + tail)  # kept, when it reads
                for second in rng.sample(_SHORT_SETUPS, 8):
                    script = second + tail
                    assert _reading(script) == _from_scratch(script, monkeypatch), script
                    compared += 1
    assert compared == 40 * 2 * 6 * 8
    assert len(set(taken)) > 200  # the comparisons did take kept readings, moved or not


# (first script, second script): the first's reading must not become the second's. The
# second's setup starts a server no mention count sees; or the first's server is in its
# setup, written so, and the text after the cut only names the module (a decoy).
_NOT_SHARED = [
    ("true;python -m vllm_server --port 1", "python -m $'vllm_server';python -m vllm_server"),
    ("true;python -m vllm_server --port 1", 'python -m $"vllm_server";python -m vllm_server'),
    (
        "true;python -m vllm_server --port 1",
        "bash -c $'python -m vllm_\\x73erver';python -m vllm_server --port 1",
    ),
    ("python -m $'vllm_server' --port 1;echo -m vllm_server", "true;echo -m vllm_server"),
    (
        "python -m $'vllm_server' --port 1;echo -m vllm_server",
        "python -m $'vllm_server' --enforce-eager;echo -m vllm_server",
    ),
    ("python -m $'vllm_server';: -m vllm_server", "xx;: -m vllm_server"),
    ("python -m $'vllm_server';coproc python -m vllm_server", "x;coproc python -m vllm_server"),
    # The decoy is an argument of a set that fails, before the server: under -e (the
    # second setup) bash exits there.
    (
        "true;set -o bad -m vllm_server;python -m $'vllm_server' --port 1",
        "set -e;set -o bad -m vllm_server;python -m $'vllm_server' --port 1",
    ),
]


@pytest.mark.parametrize(("first", "second"), _NOT_SHARED)
def test_a_server_the_mention_search_cannot_see_is_never_shared(
    first: str, second: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading._setups.clear()
    reading._tails.clear()
    _keep(first)
    # Kept only with its server after the cut: a decoy's reading could never be taken.
    assert all(invocation.start >= cut for invocation, cut, _ in reading._tails.values())
    assert _reading(second) == _from_scratch(second, monkeypatch)


def test_a_new_server_command_after_a_setup_read_before_reads_as_the_whole_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short setup's reading is kept by its text: a script whose server command is new
    but whose setup was read before is read from the cut, and reads as the whole script."""
    rng = random.Random(17)
    servers = _servers()
    real_parse = reading.shell.parse
    cut_reads: list[int] = []

    def parse(script: str, start: int = 0) -> Any:
        if start:
            cut_reads.append(start)
        return real_parse(script, start)

    real_find_plain = reading._find_plain

    def find_plain(script: str, start: int) -> Any:
        found = real_find_plain(script, start)
        if found is not None:
            cut_reads.append(start)  # read past the cut without the general reader
        return found

    monkeypatch.setattr(reading.shell, "parse", parse)
    monkeypatch.setattr(reading, "_find_plain", find_plain)
    compared = 0
    for setup in _SHORT_SETUPS:
        reading._read_short_setup.cache_clear()
        first, *others = rng.sample(servers, 9)
        _reading(setup + first)  # its setup is read (and kept, read or refused)
        for server in others:
            for tail in (server, script_fuzz.mutate(rng, server)):
                reading._tails.clear()  # nor may the server's command be taken
                script = setup + tail
                assert _reading(script) == _from_scratch(script, monkeypatch), script
                compared += 1
    assert compared == len(_SHORT_SETUPS) * 8 * 2
    assert len(cut_reads) > 100  # many were read from the cut, past the kept setup


@pytest.mark.parametrize(
    "tail",
    [
        "&python -m vllm_server --port 1",
        "& python -m vllm_server --port 1",
        "&& python -m vllm_server --port 1",
        "&(( python -m vllm_server --port 1 ))",
        "python -m vllm_server --port 1 )",
    ],
)
@pytest.mark.parametrize("setup", ["true;", "set -e;", "export A=1;", "x" * 1000 + ";"])
def test_a_script_bash_would_refuse_past_a_kept_setup_is_refused_as_a_whole(
    setup: str, tail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal names what bash reads in the whole script (";&", not "&")."""
    reading._read_short_setup.cache_clear()
    reading._setups.clear()
    reading._tails.clear()
    _reading(setup + "python -m vllm_server --port 2")  # the setup's reading is kept
    script = setup + tail
    refused = _reading(script)
    assert refused[0] == "refused" and refused[1] == cmd.UNBALANCED_QUOTING
    assert refused == _from_scratch(script, monkeypatch)


# Short setups with URLs: the reader keys them by their text with each URL's
# directories blanked. "{}" stands for directories; the URL's last part stays.
# Some name what the reader looks for through the URL: a python or a bash started by
# path, exit, set's options, an assignment, a string of each kind, a case pattern.
_URL_SETUPS = [
    "gsutil -m cp -r gs://{}llama-3-8b/* model_files;",
    'azcopy copy --recursive "https://{}m-ft-1a2b3c/*" model_files;',
    "set -e;./s5cmd cp s3://{}* model_files;",
    "s3://{}python -m $'vllm_server';",
    's3://{}python3.11 -m $"vllm_server" --port 1;',
    "env A=1 s3://{}python -m $'vllm_server';",
    "https://{}bash -c $'python -m vllm_\\x73erver';",
    "set -e;s3://{}exit;",
    "s3://{}exit 1;",
    "exit s3://{}x;",
    "exec s3://{}x;",
    "set -e;false s3://{}x;",
    "set -o s3://{}errexit;",
    "set -e;set -o s3://{}errexit;",
    "set -e s3://{}x;",
    "set -e;set -o/x s3://{}y;",  # an option with a "/", not a URL: bash refuses it
    "set -e;2>&1x true s3://{}x;",
    "x=s3://{}y;",
    "echo 's3://{}';",
    'echo "s3://{}";',
    "echo $'s3://{}\\'';",
    "case s3://{}a in s3://{}b) exit;; esac;",
    "[[ s3://{}a == s3://{}b ]] && exit;",
    "echo ${x:-s3://{}};",
    "echo s3://{}{a,b} s3://{}*.json;",
    "bash -c 'python -m vllm_server --port s3://{}x';",
    # An option of bash's with a "c" in it is taken for -c: its script may be run.
    "bash -x://{}y $'python -m vllm\\x5fserver';",
    "sh -o://{}y -c $'python -m vllm\\x5fserver --enforce-eager';",
    "bash -c 'sh -e://{}y $'\\''python -m vllm\\x5fserver'\\'';",
]
# What stands between "://" and the URL's last "/": letters, digits and "_.-/", words
# the reader knows among them.
_DIRECTORIES = [
    "",
    "/",
    "a/",
    "bucket/hf-llm/",
    "python/",
    "exit/",
    "-e/",
    "errexit/",
    "-mvllm_server/",
    "vllm_server/",
    "..//x.y-z_9/",
    "c/",
    "a/bc/",
    # Characters bash gives a meaning to: no key may hide them.
    "$x/",
    "a b/",
    "a;exit;/",
    "'/",
    '"/',
    "\\/",
    "*/",
    "{a,b}/",
    "~/",
    "=/",
]


def _directories(rng: random.Random) -> list[str]:
    alphabet = "abz09_.-/" + "/" * 3
    made = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + "/"
    return [*_DIRECTORIES, made, rng.choice(_DIRECTORIES) + made]


def test_a_short_setup_reads_as_itself_with_its_urls_directories_blanked() -> None:
    """Each setup's kept reading, made once for all its URLs, is what reading that very
    setup gives; and the setups of one shape are read once."""
    rng = random.Random(19)
    read = reading._read_short_setup.__wrapped__  # the reading itself, nothing kept
    server = "python -m vllm_server --port 1"
    summaries = set()
    setups = set()
    for shape in _URL_SETUPS:
        reading._read_short_setup.cache_clear()
        for directories in _directories(rng):
            setup = shape.replace("{}", directories)
            summary = read(setup)
            assert reading._setup(setup + server, len(setup)) == summary, setup
            summaries.add(summary)
            setups.add(setup)
        # A few readings for each shape: its URLs' directories with a "c" and without,
        # none, and each of the characters with a meaning.
        assert reading._read_short_setup.cache_info().misses <= 14, shape
    assert summaries == {None, False, True}  # refused, -e off, -e on: all were exercised
    assert len(setups) > 20 * len(_URL_SETUPS)


def test_scripts_whose_setups_differ_in_urls_read_as_the_whole_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A script read past a setup kept for another URL reads as the whole script."""
    rng = random.Random(23)
    servers = _servers()
    compared = taken = 0
    for shape in _URL_SETUPS:
        taken += reading._read_short_setup.cache_info().hits
        reading._read_short_setup.cache_clear()
        first, *others = _directories(rng)
        _reading(shape.replace("{}", first) + rng.choice(servers))  # its setup is kept
        for directories in others:
            server = rng.choice(servers)
            for tail in (server, script_fuzz.mutate(rng, server)):
                reading._tails.clear()
                script = shape.replace("{}", directories) + tail
                assert _reading(script) == _from_scratch(script, monkeypatch), script
                compared += 1
    taken += reading._read_short_setup.cache_info().hits
    assert compared == len(_URL_SETUPS) * 24 * 2
    assert taken > 10 * len(_URL_SETUPS)  # setups kept for another URL were taken


def _located_past(script: str, cut: int) -> Any:
    """What the general reader finds in the script read from the cut: (invocation, its
    spans, its context, its redirection) of each start, or the error."""
    try:
        found = _find(script, reading.shell.parse(script, cut), None)
    except (cmd.CommandError, reading.shell.ShellSyntaxError) as err:
        return type(err), str(err)
    return [
        (
            f.invocation,
            f.invocation.word_spans,
            f.invocation.insert_at,
            f.invocation.command_end,
            f.context,
            f.bad_redirect,
        )
        for f in found
    ]


def test_a_server_of_ordinary_words_read_without_the_general_reader_reads_as_with_it() -> None:
    """_find_plain, the shortcut for a server of ordinary words alone after the setup,
    finds what _find finds in the general reader's reading from the cut: the same
    start, word for word, at top level and with no redirection; or it leaves the
    script to it."""
    rng = random.Random(43)
    scripts = script_fuzz.fleet_scripts(2000, seed=41, vllm_only=True)
    scripts += [script_fuzz.mutate(rng, s) for s in scripts]
    scripts += [script_fuzz.script(rng) for _ in range(3000)]
    taken = by_the_word_reader = 0
    for script in scripts:
        for cut in script_fuzz.cuts(script)[1:]:
            try:
                plain = reading._find_plain(script, cut)
            except cmd.CommandError as err:
                assert _located_past(script, cut) == (type(err), str(err)), script
                continue
            if plain is None:
                continue
            taken += 1
            lone = reading.shell.lone_plain_command(script, cut)
            assert lone is not None
            if command_locate._split_words(script, lone) == ([], []):
                by_the_word_reader += 1  # (an expansion, a quote inside a word...)
            assert _located_past(script, cut) == [
                (plain, plain.word_spans, plain.insert_at, plain.command_end, 0, False)
            ], script
    assert taken > 1000
    assert by_the_word_reader > 300
