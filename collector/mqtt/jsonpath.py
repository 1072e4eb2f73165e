"""JSON paths as the site file writes them: `AM2301.Temperature`, `a[0].b`, `params."temperature:0".tC`.

Paths are compiled once at start into tuples of keys and indexes, so the hot
path is a short loop of dict/list lookups with no parsing per message.
"""

from __future__ import annotations

from typing import Final

Step = str | int
Steps = tuple[Step, ...]


class _Missing:
    """Distinct from JSON null: a key that is absent is not a value of None."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def compile_path(text: str) -> Steps:
    """Split a path into keys and indexes; raise ValueError with the position of a syntax error."""
    steps: list[Step] = []
    i, n = 0, len(text)
    need_step = True  # at the start and after a '.', a key must follow
    while i < n:
        char = text[i]
        if char == ".":
            if need_step:
                raise ValueError(f"path {text!r}: empty key at position {i}")
            need_step = True
            i += 1
            continue
        if char == "[":
            end = text.find("]", i)
            if end < 0:
                raise ValueError(f"path {text!r}: '[' at position {i} is not closed")
            inner = text[i + 1:end].strip()
            if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
                steps.append(inner[1:-1])
            elif inner.isdigit():
                steps.append(int(inner))
            else:
                raise ValueError(f"path {text!r}: [{inner}] is neither an index nor a quoted key")
            i = end + 1
        elif not need_step:
            raise ValueError(f"path {text!r}: expected '.' or '[' at position {i}")
        elif char in "\"'":
            end = text.find(char, i + 1)
            if end < 0:
                raise ValueError(f"path {text!r}: quote at position {i} is not closed")
            steps.append(text[i + 1:end])
            i = end + 1
        else:
            end = i
            while end < n and text[end] not in ".[\"'":  # a quote inside a bare key is a missing '.'
                end += 1
            steps.append(text[i:end])
            i = end
        need_step = False
    if need_step:
        raise ValueError(f"path {text!r}: " + ("is empty" if not text else "ends with '.'"))
    return tuple(steps)


def extract(document: object, steps: Steps) -> object:
    """The value at `steps`, or MISSING when any step does not exist (partial messages are normal)."""
    node = document
    for step in steps:
        if isinstance(step, str):
            if type(node) is not dict:
                return MISSING
            node = node.get(step, MISSING)
            if node is MISSING:
                return MISSING
        else:
            if type(node) is not list or step >= len(node):
                return MISSING
            node = node[step]
    return node
