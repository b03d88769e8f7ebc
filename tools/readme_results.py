"""Copy the comparison's tables and its supported claims from ``figures/xai_tables.md`` (written by
``XAI_methods.ipynb``) into the README, so that the numbers the README shows are those the notebook
produced. Run it from the repository's root after a full run of the notebook:

    python tools/readme_results.py            # or: python tools/readme_results.py --check

Two blocks of the README are rewritten, between ``<!-- xai-tables:start -->`` and
``<!-- xai-tables:end -->`` (the compact table of each group: its ``### Summary: ...`` sections) and
between ``<!-- xai-orderings:start -->`` and ``<!-- xai-orderings:end -->`` (the orderings of the
methods, one row a metric). The full tables, every paired difference and every claim whose
confidence interval excludes 0 stay in ``figures/xai_tables.md``. The README is rewritten through a temporary
file and a rename; ``--check`` only reports whether it is up to date (exit 1 if not).
"""
from __future__ import annotations

import os
import re
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:                                   # run as a script: the repository's stdlib-only writer
    sys.path.insert(0, _REPO)
from atomic_files import write_atomic  # noqa: E402

TABLES, ORDERINGS = "xai-tables", "xai-orderings"
SUMMARY = "Summary: "
ORDERED = "Orderings"


def sections(text: str) -> list[tuple[str, str]]:
    """The ``### heading`` sections of the tables file: [(heading, body)], in order."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    if len(parts) < 3:
        raise SystemExit("figures/xai_tables.md has no '### ' sections: run XAI_methods.ipynb first")
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def blocks(text: str) -> dict[str, str]:
    """The README blocks built from the tables file's text."""
    found = sections(text)
    tables = [f"**{heading[len(SUMMARY):]}**\n\n{body}" for heading, body in found if heading.startswith(SUMMARY)]
    orderings = [f"{body}\n\n{heading[len(ORDERED):].strip()}" for heading, body in found if heading.startswith(ORDERED)]
    if not tables or len(orderings) != 1:
        raise SystemExit(f"figures/xai_tables.md needs '### {SUMMARY}...' sections and one '### {ORDERED} ...' "
                         "section: run XAI_methods.ipynb")
    return {TABLES: "\n\n".join(tables), ORDERINGS: orderings[0]}


def fill(readme: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise SystemExit(f"README.md needs exactly one {start} ... {end} block")
    head, rest = readme.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def updated(readme: str, tables_text: str) -> str:
    for name, body in blocks(tables_text).items():
        readme = fill(readme, name, body)
    return readme


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with open(os.path.join("figures", "xai_tables.md")) as f:
        tables_text = f.read()
    with open("README.md") as f:
        readme = f.read()
    new = updated(readme, tables_text)
    if check:
        print("README.md is up to date" if new == readme else "README.md differs from figures/xai_tables.md")
        return int(new != readme)
    if new != readme:
        write_atomic("README.md", new)
    print("README.md", "updated" if new != readme else "already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
