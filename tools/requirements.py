"""Print requirement lines taken from pyproject.toml, one per line, for ``pip install``.

Used by the Makefile to install the dependencies of an environment explicitly (after the package
itself was installed with ``--no-deps``) without repeating the version specifiers here.

usage: python tools/requirements.py [--no-base] [--extra NAME]... [--exclude NAME]... [PYPROJECT]

  --no-base        leave out ``[project] dependencies``
  --extra NAME     add the optional dependencies of extra NAME
  --exclude NAME   drop requirements on distribution NAME (e.g. scikit-sparse)
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


def main() -> None:
    """Parse the arguments and print the requirements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-base", action="store_true")
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument(
        "pyproject", nargs="?", default=Path(__file__).parents[1] / "pyproject.toml"
    )
    args = parser.parse_args()

    with open(args.pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    requirements = [] if args.no_base else list(project.get("dependencies", []))
    extras = project.get("optional-dependencies", {})
    for extra in args.extra:
        if extra not in extras:
            raise SystemExit(f"no extra {extra!r} in {args.pyproject}")
        requirements += extras[extra]
    excluded = {_canonical(name) for name in args.exclude}
    seen = set()
    for requirement in requirements:
        if _dist_name(requirement) not in excluded and requirement not in seen:
            seen.add(requirement)
            sys.stdout.write(requirement + "\n")


if __name__ == "__main__":
    main()
