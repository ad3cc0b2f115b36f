"""The vLLM start as data: the invocation, its argument groups, and the errors of reading it.

What :mod:`migrate.core.command` gives its callers: a :class:`VllmInvocation` (the
module, the positionals, the ``--flag [values]`` groups as :class:`Arg`, and the
spans an edit needs), or a :class:`CommandError` whose ``kind`` is one of
:data:`KINDS`. Plain values and no reading: every other part of the command reader
builds or takes them, so they sit below all of those, with the shortcut they share
for a word's text (:func:`_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generic, NamedTuple, TypeVar, overload

from migrate.core import shellwords

_T = TypeVar("_T")

__all__ = [
    "AMBIGUOUS_ENFORCE_EAGER",
    "ENFORCE_EAGER",
    "GPU_MEMORY_UTILIZATION",
    "INDIRECT_ARGUMENTS",
    "KINDS",
    "MULTIPLE_VLLM_INVOCATIONS",
    "NOT_A_BASH_COMMAND",
    "NO_VLLM_INVOCATION",
    "UNBALANCED_QUOTING",
    "VERIFICATION_FAILED",
    "VLLM_MODULES",
    "Arg",
    "CommandError",
    "VllmInvocation",
]

ENFORCE_EAGER = "--enforce-eager"
GPU_MEMORY_UTILIZATION = "--gpu-memory-utilization"
VLLM_MODULES = ("vllm_server", "vllm_startup_wrapper")

NOT_A_BASH_COMMAND = "not-a-bash-command"
UNBALANCED_QUOTING = "unbalanced-quoting"  # and every other reason bash would refuse the script
NO_VLLM_INVOCATION = "no-vllm-invocation"
MULTIPLE_VLLM_INVOCATIONS = "multiple-vllm-invocations"
AMBIGUOUS_ENFORCE_EAGER = "ambiguous-enforce-eager"
VERIFICATION_FAILED = "verification-failed"
INDIRECT_ARGUMENTS = "indirect-arguments"
KINDS = frozenset(
    {
        NOT_A_BASH_COMMAND,
        UNBALANCED_QUOTING,
        NO_VLLM_INVOCATION,
        MULTIPLE_VLLM_INVOCATIONS,
        AMBIGUOUS_ENFORCE_EAGER,
        VERIFICATION_FAILED,
        INDIRECT_ARGUMENTS,
    }
)


class CommandError(Exception):
    """A script the command reader refuses to interpret or edit; ``kind`` is machine-readable."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __reduce__(self) -> tuple[type[CommandError], tuple[str, str]]:
        # The two-argument constructor would otherwise break pickling (multiprocessing).
        return (type(self), (self.kind, self.reason))

    def __repr__(self) -> str:
        return f"CommandError({self.kind!r}, {self.reason!r})"


class _kept(Generic[_T]):  # a decorator, named like functools.cached_property
    """functools.cached_property without its lock: Python 3.11's takes one on every
    first read (0.45 us a read, against 0.17). A reading is immutable, so two
    threads that race compute the same value."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _kept[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...
    def __get__(self, obj: object, owner: type | None = None) -> _T | _kept[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class Arg(NamedTuple):
    """One ``--flag [values...]`` group of the vLLM invocation, with its place in the script.

    ``values`` are raw shell words (as written); :meth:`texts` gives what the
    server receives. ``start``/``end`` span the flag and its values in the script.
    """

    flag: str
    values: tuple[str, ...]
    start: int
    end: int
    inline: bool = False

    def written(self) -> tuple[str, ...]:
        """The values as the script's author meant them, for comparing with stored args.

        Generations D-F printed dict and list values as unquoted Python reprs
        (``--rope-scaling {'type': 'linear', 'factor': 2.0}``), which bash splits
        into several words; such a group is given back whole, as written.
        Anything else: :meth:`texts`.
        """
        if len(self.values) > 1 and self.values[0][:1] in ("{", "["):
            return (" ".join(self.values),)
        return self.texts()

    def texts(self) -> tuple[str, ...]:
        return tuple([_value_text(value) for value in self.values])


@dataclass(frozen=True)
class VllmInvocation:
    """The one ``python -m vllm_server|vllm_startup_wrapper`` command of a script.

    ``start``/``end`` span the pipeline that runs it (``... | tee log`` included).
    """

    script: str = field(repr=False)
    module: str
    start: int
    end: int
    positionals: tuple[str, ...]
    args: tuple[Arg, ...]
    # Where an added flag goes when there is no utilization to sit beside: after
    # the last argument, before any redirection or trailing shell operator.
    insert_at: int = field(default=-1, repr=False, compare=False)
    # For checking an edit without reading the whole script again: the spans of
    # the command's words from the interpreter on, and where the command ends.
    word_spans: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)
    command_end: int = field(default=-1, repr=False, compare=False)
    # Inside a nested ``bash -c '...'`` string: an edit is checked by a full re-read.
    nested: bool = field(default=False, repr=False, compare=False)
    # set_enforce_eager's answers for this reading, by the wanted state of the flag.
    _edits: dict[bool, str | CommandError] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def get(self, flag: str) -> Arg | None:
        # argparse keeps the last occurrence of a repeated option, so do we.
        for arg in reversed(self.args):
            if arg.flag == flag:
                return arg
        return None

    def all(self, flag: str) -> tuple[Arg, ...]:
        return tuple(arg for arg in self.args if arg.flag == flag)

    def has(self, flag: str) -> bool:
        return any(arg.flag == flag for arg in self.args)

    @_kept
    def enforce_eager(self) -> bool:
        for arg in self.args:
            if arg.flag == ENFORCE_EAGER and not arg.values and not arg.inline:
                return True
        return False

    @_kept
    def gpu_memory_utilization(self) -> Decimal | None:
        text = self._single_text(GPU_MEMORY_UTILIZATION)
        return None if text is None else _decimal(text)

    @property
    def tensor_parallel_size(self) -> int | None:
        return self._int("--tensor-parallel-size")

    @property
    def pipeline_parallel_size(self) -> int | None:
        return self._int("--pipeline-parallel-size")

    @property
    def served_model_names(self) -> tuple[str, ...]:
        arg = self.get("--served-model-name")
        return arg.texts() if arg is not None else ()

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """Each flag's values (:meth:`Arg.written`), keyed as vllm_additional_args are."""
        return dict(self._items)

    def args_by_key(self) -> Mapping[str, tuple[str, ...]]:
        """:meth:`as_dict`, worked out only if it is read (most decisions never do)."""
        return _ArgsByKey(self)

    @_kept
    def _items(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((arg.flag[2:].replace("-", "_"), arg.written()) for arg in self.args)

    def _single_text(self, flag: str) -> str | None:
        arg = self.get(flag)
        if arg is None or len(arg.values) != 1:
            return None
        return _value_text(arg.values[0])

    def _int(self, flag: str) -> int | None:
        text = self._single_text(flag)
        return None if text is None else _integer(text)


class _ArgsByKey(Mapping[str, tuple[str, ...]]):
    __slots__ = ("invocation", "known")

    def __init__(self, invocation: VllmInvocation) -> None:
        self.invocation = invocation
        self.known: dict[str, tuple[str, ...]] | None = None

    def _dict(self) -> dict[str, tuple[str, ...]]:
        if self.known is None:
            self.known = self.invocation.as_dict()
        return self.known

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


# A fleet writes a handful of utilizations and sizes: each text is read once.
@lru_cache(maxsize=256)
def _decimal(text: str) -> Decimal | None:
    # vLLM reads it with float(), which ignores surrounding whitespace: a CRLF
    # script's "0.9\r" is 0.9 to the server.
    stripped = text.strip()
    return Decimal(stripped) if _DECIMAL.fullmatch(stripped) else None


@lru_cache(maxsize=256)
def _integer(text: str) -> int | None:
    stripped = text.strip()
    return int(stripped) if _INTEGER.fullmatch(stripped) else None


# A word bash passes on exactly as written: nothing quoted, escaped or expanded.
_PLAIN = re.compile(r"""[^\\'"$`<>{]*""")


def _value_text(value: str) -> str:
    """What the server receives for an argument value written as ``value`` (Arg.values)."""
    return value if _PLAIN.fullmatch(value) else shellwords.unquote(value)


def _text(raw: str) -> str | None:
    """The word's text, or None when an expansion makes it at run time."""
    if _PLAIN.fullmatch(raw):
        return raw
    return shellwords.info(raw).text
