"""The generation endpoints through Starlette's TestClient, on a tiny trained run."""
from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.serve.errors import ServeError
from gankit.sampling import generate, noise

pytestmark = pytest.mark.slow   # trains the tiny runs on first use


def tiles(payload: dict, run: int = 0) -> np.ndarray:
    """The base64 PNG tiles of one run in a /api/grid answer, as (N, H, W) uint8."""
    return np.stack([np.array(Image.open(io.BytesIO(base64.b64decode(b))))
                     for b in payload["runs"][run]["images"]])


def get_ok(client, url: str) -> dict:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return r.json()


def test_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="/static/app.js">' in page.text
    for asset in ("app.js", "style.css"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 500
    assert "http" not in client.get("/static/app.js").text.replace("HTTP ", "")   # no CDN


def test_info(client, served_cgan):
    info = get_ok(client, "/api/info")
    assert info["num_classes"] == 10 and info["class_names"] == [str(i) for i in range(10)]
    (m,) = info["models"]
    assert m["conditional"] and m["nz"] == served_cgan[0].run.G.nz
    share = m["directions"]["principal"]
    assert len(share) == 5 and share == sorted(share, reverse=True) and 0 < sum(share) <= 1.0001
    assert m["directions"]["z"] == [None] * 5


def test_grid_is_the_librarys_samples(client, served_cgan):
    """class k, seed s and no edits: exactly gankit.sampling.generate's images."""
    G, D = served_cgan[0].run.G, served_cgan[0].run.D
    answer = get_ok(client, "/api/grid?class=3&n=6&seed=11")
    want, _ = generate(G, 6, labels="3", seed=11)
    assert np.array_equal(tiles(answer), want[:, 0].numpy())
    # D's scores: sigmoid(D(x, 3)) in eval mode, sample by sample (not a function of the grid)
    y = torch.full((6,), 3)
    with torch.no_grad():
        x = G(noise(6, G.nz, 11), y)
        alone = [float(torch.sigmoid(D(x[i:i + 1], y[i:i + 1]))) for i in range(6)]
    assert answer["runs"][0]["scores"] == pytest.approx(alone, abs=2e-4)


def test_grid_answer_and_determinism(client):
    a = get_ok(client, "/api/grid?class=2&n=9&seed=5")
    assert a["n"] == 9 and len(a["runs"][0]["images"]) == 9
    scores = a["runs"][0]["scores"]
    assert len(scores) == 9 and all(0 <= s <= 1 for s in scores)
    b = get_ok(client, "/api/grid?class=2&n=9&seed=5")
    assert a["runs"] == b["runs"]
    assert not np.array_equal(tiles(a), tiles(get_ok(client, "/api/grid?class=2&n=9&seed=6")))
    assert not np.array_equal(tiles(a), tiles(get_ok(client, "/api/grid?class=7&n=9&seed=5")))


def test_z_slider_moves_along_an_axis(client, served_cgan):
    """basis z, slider 2 = 1.5: the sample of z + 1.5 e_1, computed here independently."""
    G = served_cgan[0].run.G
    got = tiles(get_ok(client, "/api/grid?class=4&n=4&seed=2&basis=z&sliders=0,1.5"))
    z = noise(4, G.nz, 2)
    z[:, 1] += 1.5
    with torch.no_grad():
        x = G(z, torch.full((4,), 4))
    want = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    assert np.array_equal(got, want)


def test_principal_sliders_noise_and_label_path_change_the_images(client):
    base = tiles(get_ok(client, "/api/grid?class=1&n=4&seed=3"))
    for extra in ("sliders=2", "sliders=0,0,0,0,-2", "z_noise=1", "label_noise=1",
                  "to=8&t=1"):
        moved = tiles(get_ok(client, f"/api/grid?class=1&n=4&seed=3&{extra}"))
        assert not np.array_equal(base, moved), extra
    # t = 1 on the way to 8 is class 8 itself
    assert np.array_equal(tiles(get_ok(client, "/api/grid?class=1&n=4&seed=3&to=8&t=1")),
                          tiles(get_ok(client, "/api/grid?class=8&n=4&seed=3")))


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_path_runs_from_a_to_b(client, method):
    grid = tiles(get_ok(client, "/api/grid?class=5&n=4&seed=9"))
    path = get_ok(client, f"/api/path?class=5&n=4&seed=9&a=1&b=3&steps=7&method={method}")
    strip = tiles(path)
    assert len(strip) == 7
    tol = 0 if method == "linear" else 1   # slerp's ends come back through float64
    assert np.abs(strip[0].astype(int) - grid[1]).max() <= tol
    assert np.abs(strip[-1].astype(int) - grid[3]).max() <= tol
    assert not np.array_equal(strip[3], grid[1]) and not np.array_equal(strip[3], grid[3])


def test_downloads(client):
    png = client.get("/api/grid.png?class=0&n=9&seed=1&run=0")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert "attachment" in png.headers["content-disposition"]
    img = Image.open(io.BytesIO(png.content))
    side = tiles(get_ok(client, "/api/grid?class=0&n=9&seed=1")).shape[1]
    assert img.size == (4 * (3 * side + 4 * 2),) * 2          # 3x3 tiles, pad 2, shown 4x
    gif = client.get("/api/path.gif?class=0&n=4&seed=1&a=0&b=2&steps=5&method=slerp")
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    anim = Image.open(io.BytesIO(gif.content))
    assert anim.n_frames == 2 * 5 - 2 and anim.size == (4 * side,) * 2   # there and back


@pytest.mark.parametrize("url, message", [
    ("/api/grid?class=10", "unknown label class='10'"),
    ("/api/grid?class=x", "unknown label"),
    ("/api/grid?sliders=nan", "slider 1 must be a finite number"),
    ("/api/grid?sliders=1e300", "slider 1 must be in [-10, 10]"),
    ("/api/grid?n=33", "n must be in 2..32, got 33"),
    ("/api/grid?n=100000", "n must be in 2..32"),
    ("/api/grid?class=1&class=2", "parameter 'class' is given more than once"),
    ("/api/grid?foo=1", "unknown parameter 'foo'"),
    ("/api/grid.png?run=1", "run must be in 0..0"),
    ("/api/path?a=0", "needs b"),
    ("/api/path.gif?a=0&b=1&steps=999", "steps must be in 2..32"),
    ("/api/nothing", "Not Found: /api/nothing"),
])
def test_bad_requests_are_400_with_a_message(client, url, message):
    r = client.get(url)
    assert r.status_code == (404 if "nothing" in url else 400), r.text
    assert message in r.json()["error"]
    assert get_ok(client, "/api/grid?n=4")["n"] == 4      # and the server keeps serving


def test_two_runs_side_by_side_share_z(cgan_run, uncond_run):
    from starlette.testclient import TestClient

    from gankit.serve.app import create_app
    from gankit.serve.models import load_models
    models = load_models([str(cgan_run), str(cgan_run)], which="last")
    assert [m.name for m in models] == ["run", "run (2)"]
    with TestClient(create_app(models)) as c:
        a = get_ok(c, "/api/grid?class=6&n=4&seed=4&sliders=1,1&z_noise=0.3")
        assert np.array_equal(tiles(a, 0), tiles(a, 1))
    mixed = load_models([str(cgan_run), str(uncond_run)], which="last")
    with TestClient(create_app(mixed)) as c:
        a = get_ok(c, "/api/grid?class=6&n=4&seed=4")
        b = get_ok(c, "/api/grid?class=2&n=4&seed=4")
        assert not np.array_equal(tiles(a, 0), tiles(b, 0))
        assert np.array_equal(tiles(a, 1), tiles(b, 1))   # the unconditional run ignores class
        assert len(get_ok(c, "/api/path?n=4&a=0&b=1&steps=3")["runs"]) == 2


def test_missing_run_folder_or_checkpoint(tmp_path, cgan_run):
    from gankit.cli.main import main
    from gankit.serve.models import load_models
    with pytest.raises(ServeError, match="run folder .* does not exist"):
        load_models([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServeError, match="no config.yaml"):
        load_models([str(tmp_path / "empty")])
    run = shutil.copytree(cgan_run, tmp_path / "r")
    (run / "checkpoints" / "best.pt").unlink()
    with pytest.raises(ServeError, match=r"has no checkpoints/best.pt; train it first"):
        load_models([str(run)])
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2


def test_missing_run_is_one_line(tmp_path):
    """A wrong folder stops `gankit serve` at startup with one line and exit code 2."""
    import subprocess
    import sys

    from tests.serve.server import SRC
    done = subprocess.run([sys.executable, "-m", "gankit.cli.main", "serve",
                           str(tmp_path / "missing"), "--port", "0"], capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"gankit: error: run folder {tmp_path / 'missing'} does not exist; give a folder "
        "written by `gankit train --out`"]


def test_busy_port_is_one_line(cgan_run, capsys):
    import socket

    from gankit.cli.main import main
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(cgan_run), "--port", str(port), "--which", "last"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err
