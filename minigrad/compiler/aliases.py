"""Which array each variable of a generated function holds, and whether an array is written later.

The generated backward is straight-line code at its top level (loops live in their own functions):
``a = b`` makes ``a`` hold ``b``'s array, any other assignment a new array. An array is written by
``a[...] = ...`` or ``a[...] += ...``, by ``a += ...``, and (conservatively) by being passed to a loop
function (its outputs are among its arguments) or being named inside an indented block. Used to drop
copies that protect nothing and to see that two returned adjoints are one array.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"(\w+) = (\w+)$")
_ASSIGN = re.compile(r"(\w+) = ")
_WRITE = re.compile(r"(\w+)(\[[^\]]*\])?\s*([-+*/]=|=(?!=))")
_LOOP = re.compile(r"\bloop_\w+\((.*)\)")
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")


def statement(line: str) -> str:
    """A line without its indentation and comment."""
    return line.split("  #", 1)[0].strip()


def step(env: dict[str, str], line: str, k: int) -> None:
    """Update ``env`` (variable -> the array it holds) by top-level statement ``k`` of the code."""
    s = statement(line)
    if (m := _BARE.fullmatch(s)) is not None:
        env[m.group(1)] = env.get(m.group(2), m.group(2))
    elif (m := _ASSIGN.match(s)) is not None:
        env[m.group(1)] = f"{m.group(1)}@{k}"


def holds(lines: list[str], upto: int | None = None) -> dict[str, str]:
    """The array each variable holds after ``lines[:upto]`` (an unassigned name holds its own)."""
    env: dict[str, str] = {}
    for k, line in enumerate(lines[:upto]):
        if line[:8] != " " * 8:
            step(env, line, k)
    return env


def written_after(lines: list[str], k: int, name: str) -> bool:
    """Whether any statement after ``lines[k]`` may write into the array ``name`` holds there."""
    env = holds(lines, k + 1)
    target = env.get(name, name)
    for j in range(k + 1, len(lines)):
        line = lines[j]
        s = statement(line)
        if not s:
            continue
        if line[:8] == " " * 8:  # inside a block: any mention counts
            if any(env.get(n, n) == target for n in _NAME.findall(s)):
                return True
            continue
        call = _LOOP.search(s)
        if call is not None and any(env.get(n, n) == target for n in _NAME.findall(call.group(1))):
            return True
        m = _WRITE.match(s)
        if m is not None and (m.group(2) or m.group(3) != "=") and env.get(m.group(1), m.group(1)) == target:
            return True
        step(env, line, j)
    return False
