"""Strip machine-specific noise from executed notebooks: papermill's timings and paths, execution
counts' gaps, TensorFlow's C++ start-up log lines, and progress bars (widgets that render as nothing
once saved, or carriage-return text); and keep them light: an inline PNG over 1 MB (the HMT tile
grids) is stored as a 256-colour palette PNG, which GitHub and Colab render alike (the full-colour
figure stays in figures/); and name no machine's folders: the repository's absolute path becomes
relative, and a Python warning raised inside an installed package (a ``site-packages`` path, which
the reader cannot act on) is dropped, each one reported on stderr so that whoever cleans sees it
(fix warnings at their source; this only keeps the committed file free of a machine's paths).
Papermill's injected-parameters cell is folded into the parameters cell, so that the notebook shows
the parameters its outputs came from, once.
Usage: python tools/clean_notebook.py NB.ipynb ..."""
import base64
import io
import os
import re
import sys

import nbformat

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from xai.files import atomic_open  # noqa: E402  the repository's stdlib-only writer

NOISE = re.compile(r"^(?:[IWE]\d{4} [\d:. ]+\d+ \S+:\d+\]|WARNING: All log messages before absl|"
                   r"To enable the following instructions|.*oneDNN custom operations|"
                   r".*cudart_stub|.*cuda_platform|.*cpu_feature_guard).*\n?", re.M)


LARGE_PNG = 1_000_000      # bytes of base64 text
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# "<path>/site-packages/<module>.py:<line>: <Category>Warning: <message>" and the source line under it
PACKAGE_WARNING = re.compile(r"^\S*site-packages/\S+:\d+: \w*Warning: .*\n(?:  .*\n?)?", re.M)


def scrub(text: str, repo: str = REPO) -> str:
    """``text`` without the repository's absolute path (made relative) or a package's warnings."""
    for gone in PACKAGE_WARNING.findall(text):
        print("dropped a warning from an installed package:", gone.splitlines()[0], file=sys.stderr)
    text = PACKAGE_WARNING.sub("", text)
    for root in {repo, os.path.realpath(repo)}:
        text = re.sub(re.escape(root) + r"(?:/|(?![\w.-]))", lambda m: "" if m[0].endswith("/") else ".", text)
    return text


def _lighter_png(b64: str) -> str:
    """A palette (256-colour) re-encoding of a large inline PNG, if it is smaller."""
    from PIL import Image
    image = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        buffer, format="PNG", optimize=True)
    new = base64.b64encode(buffer.getvalue()).decode()
    return new if len(new) < len(b64) else b64


def fold_injected(nb) -> None:
    """Papermill's injected-parameters cell folded into the parameters cell: each injected value
    replaces its line there (its comment kept) and the injected cell goes, so that the committed
    notebook shows the parameters its outputs came from, once."""
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    for cell in injected:
        if not params:
            raise ValueError("an injected-parameters cell but no parameters cell to fold it into")
        lines = params[0].source.split("\n")
        for line in cell.source.split("\n"):
            name, sep, value = line.partition(" = ")
            if not sep or name.startswith("#"):
                continue
            hits = [i for i, old in enumerate(lines) if re.match(rf"{re.escape(name)}\s*=", old)]
            if not hits:
                raise ValueError(f"injected parameter {name!r} is not in the parameters cell")
            comment = re.search(r"\s+#.*$", lines[hits[0]])
            lines[hits[0]] = f"{name} = {value.strip()}" + (comment.group(0) if comment else "")
        params[0].source = "\n".join(lines)
    nb.cells = [c for c in nb.cells if c not in injected]


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    fold_injected(nb)
    nb.metadata.pop("papermill", None)
    nb.metadata.get("widgets", {}).clear()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        outputs = []
        for out in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                continue                                                  # a tqdm progress widget
            if out.get("output_type") == "execute_result":
                out["execution_count"] = count
            for kind, text in out.get("data", {}).items():
                if kind.startswith("text/") and isinstance(text, str):
                    out["data"][kind] = scrub(text)
            png = out.get("data", {}).get("image/png")
            if isinstance(png, str) and len(png) > LARGE_PNG:
                out["data"]["image/png"] = _lighter_png(png)
            if out.get("output_type") == "stream":
                out["text"] = scrub(NOISE.sub("", out["text"]))
                out["text"] = "".join(line for line in out["text"].splitlines(keepends=True)
                                      if "\r" not in line and "%|" not in line)
                if not out["text"].strip():
                    continue
            outputs.append(out)
        cell.outputs = outputs
    with atomic_open(path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        clean(p)
