"""Print requirement lines taken from pyproject.toml, one per line, for ``pip install``.

Used by the Makefile and tools/*.sh to install the dependencies of an environment explicitly
without repeating the version specifiers there (and without needing pip >= 25.1 for groups).

usage: python tools/requirements.py [--no-base] [--extra NAME]... [--group NAME]...
                                   [--exclude NAME]... [--floors] [PYPROJECT]
       python tools/requirements.py --python-floor [PYPROJECT]
       python tools/requirements.py --check-pre-commit [PYPROJECT]

  --no-base           leave out ``[project] dependencies``
  --extra NAME        add the optional dependencies of extra NAME
  --group NAME        add dependency group NAME (PEP 735; ``include-group`` entries expanded)
  --exclude NAME      drop requirements on distribution NAME (e.g. scikit-sparse)
  --floors            print ``name==X`` for each requirement with a floor ``>=X`` (and nothing
                      for the others): the constraints of the oldest-supported-dependencies
                      environment
  --python-floor      print the floor of ``requires-python`` (``3.10`` for ``>=3.10``)
  --check-pre-commit  check that each hook repository of .pre-commit-config.yaml (beside
                      PYPROJECT) whose tool is pinned in the group ``dev`` (ruff, codespell) has
                      the pinned version as its rev; exit 1 naming the ones that differ
"""

import argparse
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        from pip._vendor import tomli as tomllib

#: Hook repositories of .pre-commit-config.yaml and the distribution each one runs.
HOOK_TOOLS = {
    "https://github.com/astral-sh/ruff-pre-commit": "ruff",
    "https://github.com/codespell-project/codespell": "codespell",
    "https://github.com/pre-commit/mirrors-mypy": "mypy",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise SystemExit(f"cannot parse requirement {requirement!r}")
    return _canonical(match.group(1))


def _floor(requirement: str) -> str | None:
    match = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", requirement)
    return match.group(1) if match else None


def _group(groups: dict, name: str, path, seen: tuple = ()) -> list[str]:
    if name not in groups:
        raise SystemExit(f"no dependency group {name!r} in {path}")
    if name in seen:
        raise SystemExit(f"dependency group {name!r} includes itself in {path}")
    requirements = []
    for entry in groups[name]:
        if isinstance(entry, dict):
            requirements += _group(groups, entry["include-group"], path, (*seen, name))
        else:
            requirements.append(entry)
    return requirements


def _check_pre_commit(pyproject, groups: dict) -> int:
    config = Path(pyproject).parent / ".pre-commit-config.yaml"
    pins = {}
    for requirement in _group(groups, "dev", pyproject):
        match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;]+)\s*", requirement)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    # A YAML parser is not at hand everywhere; the file's "- repo: URL" / "rev: vX" pairs are.
    revs = dict(
        re.findall(r"-\s*repo:\s*(\S+)\s*\n\s*rev:\s*['\"]?v?([^\s'\"]+)", config.read_text())
    )
    problems = []
    for url, tool in HOOK_TOOLS.items():
        if url in revs and tool in pins and revs[url] != pins[tool]:
            problems.append(f"{tool}: pre-commit runs {revs[url]}, the group dev pins {pins[tool]}")
        elif url in revs and tool not in pins:
            problems.append(f"{tool}: in {config.name} but not pinned in the group dev")
    for problem in problems:
        print(f"tools/requirements.py: {problem}", file=sys.stderr)
    if not problems:
        agreed = ", ".join(f"{tool} {pins[tool]}" for tool in sorted(pins))
        print(f"pre-commit and the group dev agree: {agreed}")
    return 1 if problems else 0


def main() -> None:
    """Parse the arguments and print the requirements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-base", action="store_true")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--floors", action="store_true")
    parser.add_argument("--python-floor", action="store_true")
    parser.add_argument("--check-pre-commit", action="store_true")
    parser.add_argument(
        "pyproject", nargs="?", default=Path(__file__).parents[1] / "pyproject.toml"
    )
    args = parser.parse_args()

    with open(args.pyproject, "rb") as f:
        data = tomllib.load(f)
    project = data["project"]
    groups = data.get("dependency-groups", {})
    if args.check_pre_commit:
        sys.exit(_check_pre_commit(args.pyproject, groups))
    if args.python_floor:
        floor = _floor(project.get("requires-python", ""))
        if floor is None:
            raise SystemExit(f"no floor '>=X' in requires-python of {args.pyproject}")
        sys.stdout.write(floor + "\n")
        return
    requirements = [] if args.no_base else list(project.get("dependencies", []))
    extras = project.get("optional-dependencies", {})
    for extra in args.extra:
        if extra not in extras:
            raise SystemExit(f"no extra {extra!r} in {args.pyproject}")
        requirements += extras[extra]
    for group in args.group:
        requirements += _group(groups, group, args.pyproject)
    excluded = {_canonical(name) for name in args.exclude}
    seen = set()
    for requirement in requirements:
        if _dist_name(requirement) in excluded or requirement in seen:
            continue
        seen.add(requirement)
        if not args.floors:
            sys.stdout.write(requirement + "\n")
        elif (floor := _floor(requirement)) is not None:
            sys.stdout.write(f"{_dist_name(requirement)}=={floor}\n")


if __name__ == "__main__":
    main()
