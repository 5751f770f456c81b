"""The static HTML report of a run (RUN/report.html) and the comparison page of several runs.

One self-standing page, no external CSS/JS/fonts (the stylesheet is inlined), so it opens
offline from disk. Images are referenced by paths relative to the page (the run folder is
the unit you copy), or inlined as data URIs with `embed=True` (one file to mail around).
Every number in a metrics table sits in a cell with `data-key` (its key in metrics.jsonl or
"eval/<record>/<metric>") and `data-value` (the exact number, Python's repr), beside the
printed value, so tools and tests can read the page back. All text is HTML-escaped.
"""
from __future__ import annotations

import logging
import base64
import datetime as _dt
import html
import mimetypes
import os
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

from gankit import __version__
from gankit.config import keys
from gankit.exploration.run import explore_run, read_index
from gankit.fileio import atomic_write
from gankit.plots.run import read_index as read_plots
from gankit.report.run_plots import write_run_plots
from gankit.report.compare_plots import overlay_curves
from gankit.report.metrics import (MetricGroup, eval_groups, exact, format_value, read_eval,
                                   run_metrics, training_group)
from gankit.training.runs import RunPaths

REPORT_NAME = "report.html"


_LOG = logging.getLogger("gankit.report")


def log(msg: str) -> None:
    """A progress message: "[gankit report] ..." on stderr; `gankit --quiet` silences it."""
    _LOG.info(msg)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


class Page:
    """Builds one page in folder `where`: image sources relative to it, or data URIs."""

    def __init__(self, where: Path, embed: bool = False) -> None:
        self.where = Path(where).resolve()
        self.embed = embed

    def src(self, path: Path) -> str:
        path = Path(path).resolve()
        if self.embed:
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        rel = os.path.relpath(path, self.where)
        return quote(Path(rel).as_posix())

    def img(self, path: Path, alt: str, pixels: bool = False) -> str:
        cls = ' class="pixels"' if pixels else ""
        return f'<img src="{esc(self.src(path))}" alt="{esc(alt)}"{cls}>'

    def figure(self, path: Path, title: str, caption: str = "", pixels: bool = False) -> str:
        cap = f"<b>{esc(title)}</b>" + (f" {esc(caption)}" if caption else "")
        return f"<figure>{self.img(path, title, pixels)}<figcaption>{cap}</figcaption></figure>"


def _stylesheet() -> str:
    try:
        return resources.files("gankit.report").joinpath("style.css").read_text()
    except (FileNotFoundError, OSError):
        return ""


def _document(title: str, header: str, body: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>\n{_stylesheet()}</style>\n</head>\n<body>\n"
        f"<header>\n{header}\n</header>\n<main>\n{body}\n</main>\n"
        f"<footer>written by gankit {esc(__version__)} on {esc(stamp)}</footer>\n"
        "</body>\n</html>\n")


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{inner}\n</section>'


def _value_cell(key: str, v: float | None, run: str | None = None) -> str:
    extra = f' data-run="{esc(run)}"' if run is not None else ""
    return (f'<td class="num" data-key="{esc(key)}" data-value="{esc(exact(v))}"{extra}>'
            f"{esc(format_value(key, v))}</td>")


def metrics_tables(groups: Sequence[MetricGroup]) -> str:
    """One table of every group's scalar values (key, value) and per-class matrices."""
    if not groups:
        return "<p>No metrics yet.</p>"
    rows, extra = [], []
    for g in groups:
        note = f' <span class="note">{esc(g.note)}</span>' if g.note else ""
        rows.append(f'<tbody><tr><th class="group" colspan="2">{esc(g.title)}{note}</th></tr>')
        for key, v in g.values.items():
            shown = key[len(g.prefix):] if g.prefix and key.startswith(g.prefix) else key
            rows.append(f"<tr><th scope=\"row\" title=\"{esc(key)}\"><code>{esc(shown)}</code>"
                        f"</th>{_value_cell(key, v)}</tr>")
        rows.append("</tbody>")
        if g.per_class:
            extra.append(_per_class_table(g))
    table = '<table class="metrics" id="metrics">\n' + "\n".join(rows) + "\n</table>"
    return table + "\n".join(extra)


def _per_class_table(g: MetricGroup) -> str:
    classes = sorted({c for m in g.per_class.values() for c in m}, key=int)
    metrics = list(g.per_class)
    head = "".join(f"<th>{esc(m)}</th>" for m in metrics)
    body = []
    for c in classes:
        cells = "".join(_value_cell(*g.per_class[m][c]) if c in g.per_class[m] else "<td></td>"
                        for m in metrics)
        body.append(f"<tr><th scope=\"row\">{esc(c)}</th>{cells}</tr>")
    return (f"<details><summary>{esc(g.title)}: per class</summary>"
            f'<table class="metrics per-class"><thead><tr><th>class</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></details>")


def _figures(items: Iterable[str], wide: bool = False) -> str:
    items = list(items)
    if not items:
        return ""
    return f'<div class="figures{" wide" if wide else ""}">\n' + "\n".join(items) + "\n</div>"


def _config_text(paths: RunPaths) -> str:
    return paths.config.read_text() if paths.config.is_file() else "(no config.yaml)"


def _eval_figures(page: Page, run_dir: Path) -> list[str]:
    """PNG figures `gankit eval` wrote in RUN/eval/<record>/."""
    out = []
    for folder in sorted(p for p in RunPaths(run_dir).eval_dir.glob("*") if p.is_dir()):
        for png in sorted(folder.glob("*.png")):
            title = f"{folder.name}: {png.stem.replace('_', ' ')}"
            out.append(page.figure(png, title, "", pixels=False))
    return out


# ---------------------------------------------------------------------------------------------
# The run report

def write_run_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                     which: str = "best", explore: bool = True, plots: bool = True,
                     embed: bool = False, seed: int = 0, device: str = "cpu",
                     n_samples: int = 2000, d_per_class: int = 200) -> Path:
    """Write the report of one run: RUN/report.html by default (or the file `out`).

    `plots`: (re)write RUN/plots first (curves, real vs generated, class distribution, GIF).
    `explore`: run `gankit explore` first when RUN/explore/index.json is missing and the run
    has a checkpoint (it is quick, and the exploration is half of what the page is for).
    `n_samples`: samples for the class-distribution plot; `d_per_class`: images per class for
    the exploration's per-class discriminator accuracy (0 skips it).
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    paths.require_run()
    out = Path(out) if out is not None else paths.report
    has_ckpt = paths.checkpoint(which).is_file()
    notes: list[str] = []
    plot_index = write_run_plots(run_dir, which=which, seed=seed, device=device,
                                 n_samples=n_samples) if plots \
        else read_plots(paths.plots_dir)
    if plot_index:
        notes += plot_index.get("notes", [])
    exp_index = read_index(paths.explore_dir)
    if exp_index is None and explore and has_ckpt:
        log(f"no {paths.explore_dir / 'index.json'}: running the exploration first")
        exp_index = explore_run(run_dir, which=which, seed=seed, d_per_class=d_per_class,
                                device=device)
    if exp_index is None:
        notes.append("no exploration figures: run `gankit explore RUN`"
                     + ("" if has_ckpt else " once the run has a checkpoint"))
    page = Page(out.parent, embed)
    rows = paths.read_metrics()
    cfg = paths.config_dict()
    conditional = bool((cfg.get("model") or {}).get("conditional"))
    html_text = _document(f"gankit report: {run_dir.name}",
                          _run_header(run_dir, cfg, rows, which, has_ckpt),
                          _run_body(page, paths, rows, plot_index, exp_index, notes,
                                    conditional))
    return atomic_write(out, html_text)


def _run_header(run_dir: Path, cfg: dict, rows: list[dict], which: str, has_ckpt: bool) -> str:
    epochs_done = rows[-1].get("epoch", len(rows)) if rows else 0
    facts = [f"preset <b>{esc(cfg.get('preset', '?'))}</b>",
             f"epoch {esc(epochs_done)} of {esc(cfg.get('epochs', '?'))}",
             f"dataset {esc((cfg.get('data') or {}).get('name', '?'))}",
             f"model {esc((cfg.get('model') or {}).get('arch', '?'))}"
             + (" (conditional)" if (cfg.get("model") or {}).get("conditional") else ""),
             f"checkpoint {esc(which)}" + ("" if has_ckpt else " (missing)")]
    lines = [f"<h1>Run {esc(run_dir.name)}</h1>", f"<p>{' · '.join(facts)}</p>"]
    if cfg.get("report"):
        lines.append(f"<p>preset's source: {esc(cfg['report'])}</p>")
    lines.append(f"<p><code>{esc(run_dir.resolve())}</code></p>")
    links = [("summary", "Summary"), ("metrics", "Metrics"), ("curves", "Curves"),
             ("samples", "Samples"), ("evaluation", "Evaluation"),
             ("exploration", "Exploration"), ("config", "Config"), ("notes", "Notes")]
    lines.append("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in links) + "</nav>")
    return "\n".join(lines)


def _run_body(page: Page, paths: RunPaths, rows: list[dict], plot_index: dict | None,
              exp_index: dict | None, notes: list[str], conditional: bool) -> str:
    run_dir = paths.root
    parts = []
    # Summary: the last fixed-noise grid and the progression composite.
    summary = []
    last = paths.last_grid()
    if last:
        summary.append(page.figure(last[1], f"Fixed-noise grid, epoch {last[0]}",
                                   "the same noise every epoch"
                                   + ("; one row per class" if conditional else ""),
                                   pixels=True))
    prog = paths.progression
    if prog.is_file():
        summary.append(page.figure(prog, "Progression", "the fixed-noise grid across epochs"))
    parts.append(_section("summary", "Summary", _figures(summary) or "<p>No grids yet.</p>"))
    # Metrics.
    groups = [g for g in [training_group(rows)] if g] + eval_groups(read_eval(run_dir))
    if read_eval(run_dir) is None:
        notes.append("no eval/metrics.json: run `gankit eval RUN` for FID, KID, precision/recall, "
                     "IS and class metrics")
    parts.append(_section("metrics", "Metrics", metrics_tables(groups)))
    # Plots from RUN/plots.
    plot_dir = paths.plots_dir
    entries = (plot_index or {}).get("plots", [])

    def plot_figs(section: str) -> list[str]:
        return [page.figure(plot_dir / e["file"], e["title"], e.get("caption", ""),
                            pixels=e["file"].endswith(".gif"))
                for e in entries
                if e.get("section") == section and (plot_dir / e["file"]).is_file()]

    parts.append(_section("curves", "Curves", _figures(plot_figs("curves"))
                          or "<p>No training curves (no metrics.jsonl records).</p>"))
    parts.append(_section("samples", "Samples", _figures(plot_figs("samples"))
                          or "<p>No sample figures.</p>"))
    ev = _eval_figures(page, run_dir)
    parts.append(_section("evaluation", "Evaluation figures", _figures(ev)
                          or "<p>None (written by <code>gankit eval RUN</code>).</p>"))
    # Exploration.
    if exp_index:
        edir = paths.explore_dir
        figs = [page.figure(edir / f["file"], f.get("title", f["file"]), f.get("caption", ""))
                for f in exp_index.get("figures", []) if (edir / f.get("file", "")).is_file()]
        meta = (f"<p>Checkpoint {esc(exp_index.get('which', '?'))} (epoch "
                f"{esc(exp_index.get('epoch', '?'))}), seed {esc(exp_index.get('seed', '?'))}"
                + (f", label vectors: {esc(exp_index['label_encoding'])}"
                   if exp_index.get("label_encoding") else "") + ".</p>")
        enotes = "".join(f"<li>{esc(n)}</li>" for n in exp_index.get("notes", []))
        inner = meta + _figures(figs, wide=True) + (f'<ul class="notes">{enotes}</ul>'
                                                     if enotes else "")
    else:
        inner = "<p>No exploration (run <code>gankit explore RUN</code>).</p>"
    parts.append(_section("exploration", "Exploration of the latent space", inner))
    # Config and notes.
    parts.append(_section("config", "Config (config.yaml)",
                          f"<pre>{esc(_config_text(paths))}</pre>"))
    items = "".join(f"<li>{esc(n)}</li>" for n in dict.fromkeys(notes))
    parts.append(_section("notes", "Notes", f'<ul class="notes">{items}</ul>' if items
                          else "<p>Nothing was skipped.</p>"))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The comparison page

def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Column names: the folder names, made unique with their parent when they clash."""
    names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in run_dirs]
    if len(set(names)) < len(names):
        names = [f"{i + 1}: {n}" for i, n in enumerate(names)]
    return names


def _key_order(key: str) -> tuple:
    group = 0 if key in ("epoch", "step", "time_s", "lr_g", "lr_d", "d_steps") else (
        1 if key.startswith("train/") else 2 if key.startswith("val/") else 3)
    return (group, key.count("/"), key)


def write_comparison(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                     embed: bool = False) -> Path:
    """A page comparing runs: their metrics in one table (a column per run), the config
    keys that differ, overlaid curves and their final grids side by side. Writes
    out_dir/report.html (and out_dir/plots/*.png); the runs are only read."""
    runs = [Path(r) for r in run_dirs]
    for r in runs:
        RunPaths(r).require_run()
    flat = [keys.flatten(RunPaths(r).config_dict()) for r in runs]  # before writing anything
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    all_rows = [RunPaths(r).read_metrics() for r in runs]
    metrics = [run_metrics(r, rows) for r, rows in zip(runs, all_rows)]
    page = Page(out_dir, embed)
    parts = []
    # Metrics, one column per run.
    shown = sorted({k for m in metrics for k in m}, key=_key_order)
    head = "".join(f"<th>{esc(lab)}</th>" for lab in labels)
    body = []
    for key in shown:
        cells = "".join(_value_cell(key, m[key], lab) if key in m else
                        f'<td class="num missing" data-key="{esc(key)}" data-run="{esc(lab)}">'
                        "–</td>" for m, lab in zip(metrics, labels))
        body.append(f"<tr><th scope=\"row\"><code>{esc(key)}</code></th>{cells}</tr>")
    table = (f'<table class="metrics" id="metrics"><thead><tr><th>metric</th>{head}</tr></thead>'
             f"<tbody>{''.join(body)}</tbody></table>" if shown else "<p>No metrics yet.</p>")
    parts.append(_section("metrics", "Metrics", "<p>Training diagnostics of each run's last "
                          "epoch and its <code>eval/metrics.json</code>.</p>" + table))
    # Config differences.
    ckeys = sorted({k for f in flat for k in f} - {"notes", "report"})
    differ = [k for k in ckeys if len({repr(f.get(k)) for f in flat}) > 1]
    if differ:
        crow = "".join(f"<tr><th scope=\"row\"><code>{esc(k)}</code></th>"
                       + "".join(f"<td>{esc(f.get(k, '–'))}</td>" for f in flat) + "</tr>"
                       for k in differ)
        ctable = (f'<table class="metrics"><thead><tr><th>key</th>{head}</tr></thead>'
                  f"<tbody>{crow}</tbody></table>")
    else:
        ctable = "<p>The configs are identical.</p>"
    parts.append(_section("config", "Config differences", ctable))
    # Overlaid curves.
    figs = [page.figure(p, t, c) for p, t, c in overlay_curves(all_rows, labels,
                                                               out_dir / "plots")]
    parts.append(_section("curves", "Curves", _figures(figs) or "<p>No metrics yet.</p>"))
    # Final grids side by side.
    grids = []
    for r, lab in zip(runs, labels):
        last = RunPaths(r).last_grid()
        if last:
            grids.append(page.figure(last[1], lab, f"epoch {last[0]}", pixels=True))
    parts.append(_section("grids", "Final grids", f'<div class="row">{"".join(grids)}</div>'
                          if grids else "<p>No grids yet.</p>"))
    links = "".join(f'<a href="#{a}">{t}</a>' for a, t in
                    (("metrics", "Metrics"), ("config", "Config"), ("curves", "Curves"),
                     ("grids", "Grids")))
    runs_list = "".join(f"<li><code>{esc(lab)}</code>: {esc(r.resolve())}</li>"
                        for r, lab in zip(runs, labels))
    header = (f"<h1>Comparison of {len(runs)} runs</h1><ul>{runs_list}</ul><nav>{links}</nav>")
    return atomic_write(out_dir / REPORT_NAME, _document(
        "gankit comparison: " + ", ".join(labels), header, "\n".join(parts)))

