"""Write the "Open in Colab" badges into the README and the default REPO_URL into each notebook's
parameters cell, from the GitHub URL of ``git remote get-url origin``. For whoever publishes the
repository; run it from the repository's root:

    python tools/colab_links.py            # or: make colab-links

The README's badges live between the markers ``<!-- colab-links:start -->`` and
``<!-- colab-links:end -->``; each notebook's line ``REPO_URL = "..."`` gets the clone URL.
Files are rewritten through a temporary file and a rename.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:                                   # run as a script: the repository's stdlib-only writer
    sys.path.insert(0, _REPO)
from xai.files import write_atomic  # noqa: E402


def _makefile_notebooks(repo: str) -> list[str]:
    """The Makefile's NOTEBOOKS: the repository's one list of notebooks."""
    with open(os.path.join(repo, "Makefile")) as f:
        return next(line for line in f if line.startswith("NOTEBOOKS :=")).split(":=", 1)[1].split()


NOTEBOOKS = _makefile_notebooks(_REPO)
START, END = "<!-- colab-links:start -->", "<!-- colab-links:end -->"
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                    r"(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")
REPO_URL_LINE = re.compile(r'^REPO_URL = "[^"\n]*"', re.M)


def github_repo(root: str = ".") -> tuple[str, str]:
    """(owner, name) of the origin remote; raises SystemExit with a clear message otherwise."""
    try:
        url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"no 'origin' remote in {os.path.abspath(root)!r} ({err.stderr.strip()}); "
                         "add one: git remote add origin https://github.com/OWNER/REPO.git") from err
    match = GITHUB.match(url)
    if not match:
        raise SystemExit(f"origin is {url!r}, not a GitHub URL (https://github.com/OWNER/REPO or "
                         "git@github.com:OWNER/REPO.git); Colab opens notebooks from GitHub only")
    return match["owner"], match["repo"]


def _branch(root: str) -> str:
    out = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True)
    name = out.stdout.strip()
    return name if out.returncode == 0 and name and name != "HEAD" else "main"


def badges(owner: str, repo: str, branch: str) -> str:
    lines = [START]
    for nb in NOTEBOOKS:
        link = f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{nb}"
        lines.append(f"[![Open {nb} in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({link}) "
                     f"`{nb}`  ")
    lines.append(END)
    return "\n".join(lines)


def update(root: str = ".") -> list[str]:
    """Rewrite the README's badges and the notebooks' REPO_URL; returns the files changed."""
    owner, repo = github_repo(root)
    clone_url = f"https://github.com/{owner}/{repo}.git"
    changed = []
    readme = os.path.join(root, "README.md")
    text = open(readme).read()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} block to fill")
    new = text[:text.index(START)] + badges(owner, repo, _branch(root)) + text[text.index(END) + len(END):]
    if new != text:
        write_atomic(readme, new)
        changed.append("README.md")
    for nb in NOTEBOOKS:
        path = os.path.join(root, nb)
        data = json.load(open(path))
        params = [c for c in data["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        if len(params) != 1:
            raise SystemExit(f"{nb}: expected one cell tagged 'parameters', found {len(params)}")
        source = "".join(params[0]["source"])
        if not REPO_URL_LINE.search(source):
            raise SystemExit(f"{nb}: the parameters cell has no REPO_URL = \"...\" line")
        updated = REPO_URL_LINE.sub(f'REPO_URL = "{clone_url}"', source, count=1)
        if updated != source:
            params[0]["source"] = updated.splitlines(keepends=True)
            write_atomic(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
            changed.append(nb)
    return changed


if __name__ == "__main__":
    changed = update(sys.argv[1] if len(sys.argv) > 1 else ".")
    print("updated:", ", ".join(changed) if changed else "nothing (already up to date)")
