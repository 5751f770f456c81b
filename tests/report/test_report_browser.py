"""The report pages in a real browser: headless Chromium loads each page from disk (file://),
a small script waits for the load event and records every <img>'s naturalWidth and every
metric cell's data-key, data-value and rendered text, and `--dump-dom` hands that back.

No driver, no extra Python package and no network: Chromium is run with its networking
features off and a fresh profile. The page under test is a copy of the report with the
script added just before </body>, in the same folder (so relative image paths still hold).

Skipped (with the reason) only when no Chromium is installed; `make test` installs it through
scripts/system-deps.sh. GANKIT_CHROMIUM names another binary.
"""
from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gankit.report.html import write_comparison
from gankit.report.metrics import format_value
from gankit.training.runs import RunPaths

from .conftest import expected_eval_values

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "chrome", "headless_shell")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--allow-file-access-from-files"]
PROBE = """
<script id="gk-probe">
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {src: i.getAttribute('src').slice(0, 120), complete: i.complete,
            width: i.naturalWidth, height: i.naturalHeight};
  });
  var cells = Array.prototype.map.call(document.querySelectorAll('[data-key]'), function (c) {
    return {key: c.getAttribute('data-key'), value: c.getAttribute('data-value'),
            run: c.getAttribute('data-run'), text: c.textContent.trim()};
  });
  var out = document.createElement('pre');
  out.id = 'gk-probe-result';
  out.textContent = JSON.stringify({imgs: imgs, cells: cells, title: document.title});
  document.body.appendChild(out);
});
</script>
"""


def find_chromium() -> str | None:
    override = os.environ.get("GANKIT_CHROMIUM")
    if override:
        return override if shutil.which(override) or Path(override).is_file() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (looked for " + ", ".join(CANDIDATES) + "): install it with "
           "`apt-get install chromium` (`make test` does it via scripts/system-deps.sh) or set "
           "GANKIT_CHROMIUM")


def probe(page: Path, tmp_path: Path) -> dict:
    """Open `page` in headless Chromium; return what the probe script saw after load."""
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe_page = page.with_name(f"_probe_{page.name}")
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
           probe_page.resolve().as_uri()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HOME": str(tmp_path)})
    finally:
        probe_page.unlink(missing_ok=True)
    m = re.search(r'<pre id="gk-probe-result">(.*?)</pre>', done.stdout, re.S)
    assert m, (f"Chromium gave no probe result (exit {done.returncode}); stderr tail:\n"
               + "\n".join(done.stderr.splitlines()[-15:]))
    return json.loads(html_lib.unescape(m.group(1)))


def assert_images_loaded(seen: dict, at_least: int) -> None:
    imgs = seen["imgs"]
    assert len(imgs) >= at_least, imgs
    broken = [i["src"] for i in imgs if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert not broken, f"images that did not load: {broken}"


def test_run_report_in_chromium(reported_run, tmp_path):
    run, page = reported_run
    seen = probe(page, tmp_path)
    assert_images_loaded(seen, at_least=10)
    cells: dict[str, dict] = {}
    for c in seen["cells"]:
        cells.setdefault(c["key"], c)
    # every number of eval/metrics.json, and of the last metrics.jsonl record, is shown
    expected = dict(expected_eval_values())
    last = RunPaths(run).read_metrics()[-1]
    expected.update({k: v for k, v in last.items() if isinstance(v, (int, float))})
    for key, value in expected.items():
        assert key in cells, f"{key} is not in the metrics table"
        c = cells[key]
        if value is None:
            assert c["value"] == "" and c["text"] == "n/a", c
        else:
            assert float(c["value"]) == value, c
            assert c["text"] == format_value(key, value), c
            assert float(c["text"]) == pytest.approx(value, rel=5e-3, abs=1e-12), c
    assert run.name in seen["title"]


def test_comparison_in_chromium(reported_run, uncond_run, tmp_path):
    run, _ = reported_run
    page = write_comparison([run, uncond_run], tmp_path / "cmp")
    seen = probe(page, tmp_path)
    assert_images_loaded(seen, at_least=3)
    fid = [c for c in seen["cells"] if c["key"] == "eval/best-val-classifier/fid"]
    assert len(fid) == 2                                             # one cell per run
    filled = [c for c in fid if c["value"]]
    assert len(filled) == 1
    assert float(filled[0]["value"]) == expected_eval_values()["eval/best-val-classifier/fid"]


def test_the_probe_sees_a_broken_image(tmp_path):
    """The check above would fail on a missing image (the probe is not blind)."""
    from gankit.plots.grid import save_grid
    import torch
    save_grid(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), tmp_path / "ok.png")
    page = tmp_path / "p.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                    '<img src="ok.png"><img src="missing.png"></body></html>')
    seen = probe(page, tmp_path)
    widths = {i["src"]: i["width"] for i in seen["imgs"]}
    assert widths["ok.png"] > 0 and widths["missing.png"] == 0
    with pytest.raises(AssertionError, match="missing.png"):
        assert_images_loaded(seen, at_least=2)
