"""Which array each variable of a generated function holds, and whether an array is written later.

The generated backward is straight-line code at its top level (loops live in their own functions).
``a = b`` makes ``a`` hold ``b``'s array. A right-hand side known to make a new array (``dot(..)``,
``np.zeros/empty/ones(..)``, ``np.concatenate/stack(..)``, ``.copy()``) gives ``a`` an array of its
own; any other (``b.T``, ``b.reshape(..)``, ``b[0:2]``, ``b + c``) may be a view, so ``a`` is taken to
share memory with every name it reads. An array is written by ``a[...] = ...`` or ``a[...] += ...``,
by ``a += ...``, and (conservatively) by being passed to a loop function (its outputs are among its
arguments) or being named inside an indented block. Used to drop copies that protect nothing (may
two variables share memory?) and to see that two returned adjoints are one array (are they the same
binding?).
"""

from __future__ import annotations

import re

_BARE = re.compile(r"(\w+) = (\w+)$")
_ASSIGN = re.compile(r"(\w+) = (.*)$")
_FRESH = re.compile(r"(dot\(|np\.(zeros|empty|ones|concatenate|stack)\().*|.*\.copy\(\)")
_WRITE = re.compile(r"(\w+)(\[[^\]]*\])?\s*([-+*/]=|=(?!=))")
_LOOP = re.compile(r"\bloop_\w+\((.*)\)")
_NAME = re.compile(r"\b[A-Za-z_]\w*\b")


def statement(line: str) -> str:
    """A line without its indentation and comment."""
    return line.split("  #", 1)[0].strip()


class Arrays:
    """Follows the top-level statements of generated code: ``held[name]``, the array a variable holds
    (shared only through ``a = b``), and memory groups of arrays that may overlap (views)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self.group: dict[str, str] = {}  # array -> a representative of the arrays it may overlap

    def of(self, name: str) -> str:
        return self.held.get(name, name)

    def root(self, array: str) -> str:
        while self.group.get(array, array) != array:
            array = self.group[array]
        return array

    def step(self, line: str, k: int) -> None:
        """Update by top-level statement ``k``."""
        s = statement(line)
        if (m := _BARE.fullmatch(s)) is not None:
            self.held[m.group(1)] = self.of(m.group(2))
        elif (m := _ASSIGN.match(s)) is not None:
            new = f"{m.group(1)}@{k}"
            rhs = m.group(2)
            if _FRESH.fullmatch(rhs) is None:  # perhaps a view of whatever it reads
                for n in _NAME.findall(rhs):
                    self.group[self.root(self.of(n))] = self.root(new)
            self.held[m.group(1)] = new

    def overlaps(self, name: str, array: str) -> bool:
        return self.root(self.of(name)) == self.root(array)


def follow(lines: list[str], upto: int | None = None) -> Arrays:
    """The state after the top-level statements among ``lines[:upto]``."""
    arrays = Arrays()
    for k, line in enumerate(lines[:upto]):
        if line[:8] != " " * 8:
            arrays.step(line, k)
    return arrays


def holds(lines: list[str]) -> dict[str, str]:
    """The array each variable holds at the end of ``lines`` (an unassigned name holds its own)."""
    return follow(lines).held


def written_after(lines: list[str], k: int, name: str) -> bool:
    """Whether any statement after ``lines[k]`` may write into memory of the array ``name`` holds
    there (the array itself, or a view of it, or an array it is a view of)."""
    arrays = follow(lines, k + 1)
    target = arrays.of(name)
    for j in range(k + 1, len(lines)):
        line = lines[j]
        s = statement(line)
        if not s:
            continue
        if line[:8] == " " * 8:  # inside a block: any mention counts
            if any(arrays.overlaps(n, target) for n in _NAME.findall(s)):
                return True
            continue
        call = _LOOP.search(s)
        if call is not None and any(arrays.overlaps(n, target) for n in _NAME.findall(call.group(1))):
            return True
        m = _WRITE.match(s)
        if m is not None and (m.group(2) or m.group(3) != "=") and arrays.overlaps(m.group(1), target):
            return True
        arrays.step(line, j)
    return False
