"""Print requirement lines taken from pyproject.toml, one per line, for ``pip install``.

Used by the Makefile to install the dependencies of an environment explicitly (after the package
itself was installed with ``--no-deps``) without repeating the version specifiers here.

usage: python tools/requirements.py [--no-base] [--extra NAME]... [--exclude NAME]...
                                   [--floors] [PYPROJECT]
       python tools/requirements.py --python-floor [PYPROJECT]

  --no-base        leave out ``[project] dependencies``
  --extra NAME     add the optional dependencies of extra NAME
  --exclude NAME   drop requirements on distribution NAME (e.g. scikit-sparse)
  --floors         print ``name==X`` for each requirement with a floor ``>=X`` (and nothing for
                   the others): the constraints of the oldest-supported-dependencies environment
  --python-floor   print the floor of ``requires-python`` (``3.10`` for ``>=3.10``)
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


def main() -> None:
    """Parse the arguments and print the requirements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-base", action="store_true")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--floors", action="store_true")
    parser.add_argument("--python-floor", action="store_true")
    parser.add_argument(
        "pyproject", nargs="?", default=Path(__file__).parents[1] / "pyproject.toml"
    )
    args = parser.parse_args()

    with open(args.pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
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
