"""The package's structure, checked the way anyone can check it from a shell.

No module writes into an object's ``__dict__`` except the cache helper
(``woodbury_sparse/_cache.py``): a value an object receives from another (a reused
factorisation, an unchanged product) is a constructor argument, never a write afterwards.
The same check from a shell::

    grep -nE '__dict__(\\[[^]]*\\] *=[^=]|\\.(update|setdefault|pop|clear|__setitem__)\\()' \\
        -r woodbury_sparse --include='*.py' | grep -v '^woodbury_sparse/_cache.py'
"""

from __future__ import annotations

import re
from pathlib import Path

import woodbury_sparse

PACKAGE = Path(woodbury_sparse.__file__).parent

#: A write into a ``__dict__``: item assignment or deletion, or a mutating method.
DICT_WRITE = re.compile(
    r"__dict__\s*\[[^\]]*\]\s*=[^=]"
    r"|del\s+[\w.]*__dict__\s*\["
    r"|__dict__\s*\.\s*(update|setdefault|pop|popitem|clear|__setitem__|__delitem__)\s*\("
)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_pattern_finds_writes():
    for line in (
        'obj.__dict__["x"] = 1',
        "obj.__dict__[name]=value",
        'del obj.__dict__["x"]',
        "obj.__dict__.update(state)",
        'obj.__dict__.pop("x", None)',
        "obj.__dict__.setdefault(k, v)",
    ):
        assert DICT_WRITE.search(line), line
    for line in ('obj.__dict__.get("x")', 'x = obj.__dict__["x"] == 1', "dict(obj.__dict__)"):
        assert not DICT_WRITE.search(line), line


def test_no_dict_writes_outside_the_cache_helper():
    writes = []
    for path in _sources():
        if path.name == "_cache.py" and path.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DICT_WRITE.search(line):
                writes.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert writes == []
