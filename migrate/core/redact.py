"""Secrets out of text: URL passwords and `password=` values, in linear time. Pure.

Every channel the tool writes (stderr, reports, the audit log and its `argv`)
passes through `mask`, so it must hold against text nobody vetted: a password
holding `@`, `:` or a raw space, and inputs of any size. Hence no regular
expression that backtracks: each scan below moves forward, and a stretch of
text is looked at a bounded number of times, so a 100 KB argument costs
microseconds, not the seconds a `\\w+://...` pattern spends on it.

Where the end of a password is ambiguous the mask takes more, never less: a
masked host name is a nuisance, a leaked password fragment an incident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_SPACE = re.compile(r"\s")
# `password`, `sslpassword`, `PGPASSWORD`...: the key, any spaces, `=`, any spaces.
_KEY = re.compile(r"password[ \t]*=[ \t]*", re.IGNORECASE)


def mask(text: str, secrets: Iterable[str] = (), *, token: bool = False) -> str:
    """`text` with every password replaced by ***.

    `secrets` are known passwords, replaced wherever they appear. `token` says
    the text is one argument (an argv element, a URL as typed): then a URL's
    user-info and a `password=` value may contain spaces and run to the end.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _mask_userinfo(text, token)
    return _mask_keys(text, token)


def _mask_userinfo(text: str, token: bool) -> str:
    """user:PASSWORD@ after each `://`, the password ending at the token's last `@`."""
    out: list[str] = []
    pos = 0
    line_end = -1
    i = text.find("://")
    while i != -1:
        start = i + 3
        if line_end < start:  # found once per line, not once per URL in it
            line_end = text.find("\n", start)
            line_end = len(text) if line_end == -1 else line_end
        if token:
            token_end = line_end
        else:
            space = _SPACE.search(text, start, line_end)
            token_end = space.start() if space else line_end
        at = text.rfind("@", start, token_end)
        resume = token_end
        if at == -1 and text.find(":", start, token_end) != -1:
            # `user:pa ss@host`: a password with a raw space ends the token early.
            at = text.rfind("@", token_end, line_end)
            resume = line_end
        if at != -1:
            colon = text.find(":", start, at)
            if colon != -1 and colon >= pos:
                out.append(text[pos : colon + 1])
                out.append(MASK)
                pos = at
        i = text.find("://", max(resume, start))
    out.append(text[pos:])
    return "".join(out)


def _mask_keys(text: str, token: bool) -> str:
    """password=VALUE (libpq conninfo, URL query, environment): the value masked.

    The value ends at white space, or in a URL argument at the next `&`, but
    never inside quotes (a backslash escapes, as in libpq); a quote never
    closed runs to the end.
    """
    out: list[str] = []
    pos = 0
    in_url = token and "://" in text
    for found in _KEY.finditer(text):
        value = found.end()
        if value < pos:
            continue  # inside a value already masked
        end = _value_end(text, value, in_url)
        out.append(text[pos:value])
        out.append(MASK)
        pos = end
        if pos >= len(text):
            break
    out.append(text[pos:])
    return "".join(out)


def _value_end(text: str, start: int, in_url: bool) -> int:
    """Where a `password=` value ends: quoted stretches (escapes honoured) never end it."""
    stops = "&" if in_url else " \t\r\n\f\v"
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c in stops:
            return i
        else:
            i += 1
    return n
