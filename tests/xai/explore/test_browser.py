"""The explorer in a real browser: Voila serves a notebook that shows it, headless Chromium
(Playwright on the system's Chromium) picks a class in its first drop-down, and the image and the
status line change; a screenshot is saved. ``make test-browser`` installs what it needs and runs it
(in .ci/run); elsewhere it is skipped with the command that runs it."""
import os

import numpy as np
import pytest

BROWSER = os.environ.get("XAI_BROWSER_TEST") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not BROWSER, reason="a real browser: run `make test-browser`")
def test_choosing_a_class_in_chromium_changes_the_map_drawn(tile_files, tiles, tmp_path):
    from tools.explorer_browser import drive, explorer_notebook, voila
    np.save(tmp_path / "tiles.npy", tiles)
    setup = (f"import numpy as np\nfrom xai.explore import explore\nexplorer = explore({dict(tile_files)!r}, "
             f"np.load({str(tmp_path / 'tiles.npy')!r}), labels=np.arange(23) % 4, class_names=list('abcd'))")
    notebook = explorer_notebook(str(tmp_path / "explorer.ipynb"), setup)
    shot = str(tmp_path / "explorer.png")
    with voila(notebook) as url:
        seen = drive(url, shot, choose="c")
    assert "class c" in seen["status_after"] and "class c" not in seen["status_before"]
    assert seen["after"] != seen["before"]                                 # the map drawn changed
    assert os.path.getsize(shot) > 10_000
