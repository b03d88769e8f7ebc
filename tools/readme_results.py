"""Copy the comparison's orderings and its findings across settings from ``figures/xai_tables.md``
(written by ``XAI_methods.ipynb``) into the README, so that the numbers and verdicts the README
shows are those the notebook produced. Run it from the repository's root after a full run of the
notebook:

    python tools/readme_results.py            # or: python tools/readme_results.py --check

Six blocks of the README are rewritten, between ``<!-- xai-orderings:start -->`` and
``<!-- xai-orderings:end -->`` (the orderings of the methods, one row a metric, marked with how
each holds across the settings grid: the ``### Orderings ...`` section) and between
``<!-- xai-findings:start -->`` and ``<!-- xai-findings:end -->`` (the verdicts per pair of methods:
the ``### Findings across settings`` section), and between ``<!-- shortcut-findings:start -->``
and ``<!-- shortcut-findings:end -->`` (the planted-shortcut benchmark's result, written by
``xai.shortcut.report.findings_sentence`` from ``models/shortcut/shortcut_results.json``), and
between ``<!-- hmt-colour:start -->`` and ``<!-- hmt-colour:end -->`` (the colour baseline beside the
CNN, from ``models/hmt_colour_baseline.json`` and ``models/hmt_slide_cv.json``), and between
``<!-- metric-agreement:start -->`` and ``<!-- metric-agreement:end -->`` (which metrics rank the
methods alike: the README sentence of ``models/metric_agreement.json``, written by
``tools/metric_agreement.py`` with the figure the README shows), and between ``<!-- hmt-ablation:start -->``
and ``<!-- hmt-ablation:end -->`` (the recipe ablation's table, ``xai.training.ablation.ablation_markdown`` of
``models/hmt_stain_ablation.json``). The full
tables, every paired difference, every claim whose confidence interval excludes 0 and the settings
sweeps stay in ``figures/xai_tables.md``. The README is rewritten through a temporary file and a rename;
``--check`` only reports whether it is up to date (exit 1 if not).
"""
from __future__ import annotations

import os
import re
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:                                   # run as a script: the repository's writer
    sys.path.insert(0, _REPO)
from xai.files import write_atomic  # noqa: E402

ORDERINGS, FINDINGS, SHORTCUTS, COLOUR = "xai-orderings", "xai-findings", "shortcut-findings", "hmt-colour"
AGREEMENT, AGREEMENT_RESULTS = "metric-agreement", os.path.join("models", "metric_agreement.json")
ABLATION, ABLATION_RESULTS = "hmt-ablation", os.path.join("models", "hmt_stain_ablation.json")
SHORTCUT_RESULTS = os.path.join("models", "shortcut", "shortcut_results.json")
COLOUR_RESULTS, SLIDE_CV = os.path.join("models", "hmt_colour_baseline.json"), os.path.join("models", "hmt_slide_cv.json")
ORDERED = "Orderings"
ACROSS = "Findings across settings"


def sections(text: str) -> list[tuple[str, str]]:
    """The ``### heading`` sections of the tables file: [(heading, body)], in order."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    if len(parts) < 3:
        raise SystemExit("figures/xai_tables.md has no '### ' sections: run XAI_methods.ipynb first")
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def blocks(text: str) -> dict[str, str]:
    """The README blocks built from the tables file's text."""
    found = sections(text)
    orderings = [f"{body}\n\n{heading[len(ORDERED):].strip()}" for heading, body in found if heading.startswith(ORDERED)]
    findings = [body for heading, body in found if heading == ACROSS]
    if len(orderings) != 1 or len(findings) != 1:
        raise SystemExit(f"figures/xai_tables.md needs one '### {ORDERED} ...' section and one '### {ACROSS}' "
                         "section: run XAI_methods.ipynb")
    return {ORDERINGS: orderings[0], FINDINGS: findings[0]}


def fill(readme: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise SystemExit(f"README.md needs exactly one {start} ... {end} block")
    head, rest = readme.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def shortcut_block(results_path: str = SHORTCUT_RESULTS) -> str:
    """The planted-shortcut sentence, from the committed results."""
    import json

    from xai.shortcut.report import findings_sentence
    with open(results_path) as f:
        return findings_sentence(json.load(f))


def colour_block() -> str:
    """The colour baseline's sentence, from its JSON and the slide CV's."""
    import json

    from xai.training.colour_baseline import colour_sentence
    with open(COLOUR_RESULTS) as f, open(SLIDE_CV) as g:
        return colour_sentence(json.load(f), json.load(g))


def agreement_block(results_path: str = AGREEMENT_RESULTS) -> str:
    """Which metrics agree, from the committed record."""
    import json
    with open(results_path) as f:
        record = json.load(f)
    return f"**Which metrics agree** (`{record['command'].strip()}`, the figure above): {record['readme_sentence']}"


def ablation_block(results_path: str = ABLATION_RESULTS) -> str:
    """The recipe ablation's table, from its summary."""
    import json

    from xai.training.ablation import ablation_markdown
    with open(results_path) as f:
        return ablation_markdown(json.load(f))


def updated(readme: str, tables_text: str, shortcut_text: str | None = None, colour_text: str | None = None,
            agreement_text: str | None = None, ablation_text: str | None = None) -> str:
    for name, body in blocks(tables_text).items():
        readme = fill(readme, name, body)
    for name, body in ((SHORTCUTS, shortcut_text), (COLOUR, colour_text), (AGREEMENT, agreement_text),
                       (ABLATION, ablation_text)):
        if body is not None:
            readme = fill(readme, name, body)
    return readme


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with open(os.path.join("figures", "xai_tables.md")) as f:
        tables_text = f.read()
    with open("README.md") as f:
        readme = f.read()
    new = updated(readme, tables_text, shortcut_block() if os.path.isfile(SHORTCUT_RESULTS) else None,
                  colour_block() if os.path.isfile(COLOUR_RESULTS) else None,
                  agreement_block() if os.path.isfile(AGREEMENT_RESULTS) else None,
                  ablation_block() if os.path.isfile(ABLATION_RESULTS) else None)
    if check:
        print("README.md is up to date" if new == readme else
              "README.md differs from figures/xai_tables.md or the models/ records it copies")
        return int(new != readme)
    if new != readme:
        write_atomic("README.md", new)
    print("README.md", "updated" if new != readme else "already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
