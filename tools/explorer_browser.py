"""The explorer in a real browser: serve a notebook that shows it with Voila, open it in headless
Chromium through Playwright, pick a class in the explorer's first drop-down, check that the image
changes, and save a screenshot.

    python tools/explorer_browser.py                 # the README's screenshot: MNIST-1D's maps, figures/explorer.png
    python tools/explorer_browser.py --out /tmp/x.png

Needs Debian's Chromium (``apt-get install chromium``: /usr/bin/chromium, or $CHROMIUM) and the
packages of ``tests/browser-requirements.txt`` (Voila, Playwright; ``make test-browser`` installs
both). Playwright drives the system's Chromium, so no browser is downloaded.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """The system's Chromium, or an error that says how to install it."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no Chromium at {path}: apt-get install chromium (Debian), or set CHROMIUM to its path")
    return path


def explorer_notebook(path: str, setup: str) -> str:
    """A one-cell notebook that runs ``setup`` (code that leaves an Explorer in ``explorer``) and shows it."""
    import nbformat
    quiet = ("import os\nsaved = os.dup(2)\nos.dup2(os.open(os.devnull, os.O_WRONLY), 2)   # TensorFlow's start-up log\n"
             "import tensorflow\nos.dup2(saved, 2)\n")
    code = f"import sys\nsys.path.insert(0, {_REPO!r})\n{quiet}{setup}\nexplorer.widget"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def voila(notebook: str, *, timeout: float = 120.0):
    """Serve ``notebook`` with Voila on a free local port; yields its URL; stops the server (and its
    kernel) on the way out, however the block ends."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "voila", os.path.basename(notebook), "--no-browser",
                                f"--port={port}", "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
                               cwd=os.path.dirname(os.path.abspath(notebook)), stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + timeout
        while True:                          # the port, not the page: each page request runs the notebook
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"Voila did not serve {notebook}:\n{log.read().decode(errors='replace')[-3000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def drive(url: str, screenshot: str, *, choose: str, timeout_ms: int = 120_000) -> dict:
    """Open ``url`` in headless Chromium, wait for the explorer's image, choose ``choose`` in its
    first drop-down (the class), wait for the image to change, and save a screenshot. Returns the
    status line and the image's bytes before and after."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
            page.goto(url, timeout=timeout_ms)
            image = page.locator("img.widget-image").first
            try:
                image.wait_for(state="visible", timeout=timeout_ms)
            except Exception as e:                                           # say what the page shows instead
                raise RuntimeError(f"no explorer image in {timeout_ms / 1000:.0f} s; the page says:\n"
                                   f"{page.inner_text('body')[-3000:]}") from e
            status = page.locator(".widget-html-content").first
            before_status, before = status.inner_text(), image.screenshot()
            page.locator(".widget-dropdown select").first.select_option(label=choose)
            page.wait_for_function("s => document.querySelector('.widget-html-content').innerText !== s",
                                   arg=before_status, timeout=timeout_ms)
            page.wait_for_timeout(500)                                       # the new PNG decoded
            after = image.screenshot()
            os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
            partial = screenshot + ".partial.png"
            page.screenshot(path=partial, full_page=True)
            os.replace(partial, screenshot)
            return {"status_before": before_status, "status_after": status.inner_text(), "before": before,
                    "after": after}
        finally:
            browser.close()


def mnist1d_files(work: str, n: int = 300) -> str:
    """The committed MNIST-1D model's Grad-CAM, IG and RISE maps of the first ``n`` test signals,
    written to ``work`` (with the signals); returns the notebook code that explores them."""
    import keras
    import numpy as np

    import mnist1d_utils as m1
    from xai.dataset import explain_dataset
    data = m1.make_dataset()
    x, y = data["x_test"][:n, :, None].astype("float32"), data["y_test"][:n]
    np.save(os.path.join(work, "x.npy"), x)
    model = keras.models.load_model(os.path.join(_REPO, "models", "MNIST1D.keras"))
    files = {m: explain_dataset(model, (x, y), m, os.path.join(work, f"{m}.h5"), progress=False, **options)
             for m, options in (("grad_cam", {}), ("integrated_gradients", {}), ("rise", {"n_masks": 1000, "seed": 0}))}
    return (f"import numpy as np\nfrom xai.explore import explore\nexplorer = explore({files!r}, "
            f"np.load({os.path.join(work, 'x.npy')!r}))")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(_REPO, "figures", "explorer.png"), help="the screenshot to write")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="explorer-") as work:
        notebook = explorer_notebook(os.path.join(work, "explorer.ipynb"), mnist1d_files(work))
        with voila(notebook, timeout=300) as url:
            seen = drive(url, args.out, choose="3")
    print(f"{seen['status_before']} -> {seen['status_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()
