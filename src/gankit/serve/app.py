"""The Starlette application of `gankit serve`: one page, a JSON API and PNG/GIF downloads.

Routes (all GET; values in the query string, checked by `gankit.serve.query`):
  /                 the page (static/index.html, with app.js and style.css from /static)
  /api/info         the served models: names, classes, nz, slider directions, limits
  /api/grid         every model's grid for a view: base64 PNG tiles and D's scores
  /api/grid.png     one model's grid as a PNG file (`run` = 0 or 1)
  /api/path         every model's interpolation between samples a and b
  /api/path.gif     one model's interpolation as a looping GIF

A bad value is HTTP 400 with {"error": "..."}; an unexpected failure is HTTP 500 with
{"error": "..."} and the server keeps serving. Endpoints are plain functions, which Starlette
runs in its thread pool, so several tabs are served at once (requests only read the models).
"""
from __future__ import annotations

import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gankit.serve import encode, engine
from gankit.serve.errors import ServeError
from gankit.serve.models import ServedModel
from gankit.serve.query import (MAX_SAMPLES, MAX_STEPS, NOISE_LIMIT, RUN_KEY, SLIDER_LIMIT,
                                LABEL_T, parse_path, parse_run, parse_view)

STATIC = Path(__file__).parent / "static"
UPSCALE = 4   # downloads: 28 px digits are too small to see at 1:1


def _params(request: Request) -> dict[str, str]:
    params = request.query_params
    repeated = sorted({k for k in params.keys() if len(params.getlist(k)) > 1})
    if repeated:
        raise ServeError(f"parameter {repeated[0]!r} is given more than once; give it once")
    return dict(params)


def _batch_json(model: ServedModel, batch: engine.Batch) -> dict:
    return {"name": model.name, "images": encode.tiles_base64(batch.images),
            "scores": [None if s != s else round(float(s), 4) for s in batch.scores.tolist()]}


def create_app(models: list[ServedModel], max_samples: int = MAX_SAMPLES) -> Starlette:
    """The app serving `models` (one, or two side by side on the same z)."""
    if not models:
        raise ServeError("nothing to serve: give a run folder")
    limits = engine.limits_of(models, max_samples)

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def info(request: Request) -> Response:
        _params(request)
        return JSONResponse({
            "models": [m.info() for m in models],
            "num_classes": limits.num_classes, "class_names": _class_names(models),
            "limits": {"max_samples": limits.max_samples, "directions": limits.directions,
                       "slider": SLIDER_LIMIT, "noise": NOISE_LIMIT, "t": list(LABEL_T),
                       "steps": MAX_STEPS}})

    def grid(request: Request) -> Response:
        view = parse_view(_params(request), limits)
        t0 = time.perf_counter()
        runs = [_batch_json(m, engine.grid(m, view)) for m in models]
        return JSONResponse({"runs": runs, "n": view.n, "seed": view.seed,
                             "ms": round(1000 * (time.perf_counter() - t0), 1)})

    def grid_png(request: Request) -> Response:
        params = _params(request)
        view = parse_view(params, limits, (RUN_KEY,))
        model = models[parse_run(params, limits)]
        batch = engine.grid(model, view)
        return Response(encode.png_bytes(batch.images, upscale=UPSCALE), media_type="image/png",
                        headers=_attachment(f"{model.name}-class{view.label}-seed{view.seed}.png"))

    def path(request: Request) -> Response:
        query = parse_path(_params(request), limits)
        runs = [_batch_json(m, engine.path(m, query)) for m in models]
        return JSONResponse({"runs": runs, "steps": query.steps, "method": query.method})

    def path_gif(request: Request) -> Response:
        params = _params(request)
        query = parse_path(params, limits, (RUN_KEY,))
        model = models[parse_run(params, limits)]
        batch = engine.path(model, query)
        name = f"{model.name}-path-{query.a}-{query.b}-{query.method}.gif"
        return Response(encode.gif_bytes(batch.images, UPSCALE), media_type="image/gif",
                        headers=_attachment(name))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": f"{exc.detail}: {request.url.path}"},
                            status_code=exc.status_code)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}: {exc}); the "
                                      "server keeps running, please report it"},
                            status_code=500)

    routes = [Route("/", index), Route("/api/info", info), Route("/api/grid", grid),
              Route("/api/grid.png", grid_png), Route("/api/path", path),
              Route("/api/path.gif", path_gif),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, exception_handlers={
        ServeError: bad_request, HTTPException: http_error, Exception: internal_error})


def _class_names(models: list[ServedModel]) -> list[str]:
    conditional = [m for m in models if m.conditional]
    return conditional[0].class_names if conditional else []


def _attachment(filename: str) -> dict[str, str]:
    safe = "".join(c if c.isalnum() or c in "-_.()" else "_" for c in filename)
    return {"Content-Disposition": f'attachment; filename="{safe}"'}
