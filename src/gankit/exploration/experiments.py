"""Report 002's latent-space experiments, as image panels (uint8 tensors) ready to draw.

Each experiment takes a trained generator and returns an `ExploreFigure`: one or more
`Panel`s of uint8 images (N, C, H, W) laid out in rows of `nrow`, with row and column labels,
a title and a one-line caption. Nothing here writes files (`gankit.exploration.run` does), so
every experiment can be tested on its tensors.

A seed identifies the figure: the same (G, seed) always gives the same images.

Conditional generators are explored through `G.label_vector(y)` (one-hot or learnt
embedding, (B, E)) and `G.forward_vector(z, v)`, so interpolating or perturbing "the label"
means moving the vector v that G actually receives, whatever its conditioning.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn

from gankit.exploration.latent import (EPSILONS, add_noise, box_samples, convex_combinations,
                                       label_range, lerp, random_direction, slerp)
from gankit.data.image import to_uint8
from gankit.models.base import evaluating
from gankit.plots.panels import Panel
from gankit.sampling import noise

LABEL_PAIRS = ((2, 8), (3, 1))          # report 002, figures 12 and 13
FAR_FACTORS = (5.0, -3.0)               # "far outside": multiples of a learnt label vector


@dataclass
class ExploreFigure:
    """One figure of the exploration: its file stem, title, caption and panels side by side.

    `data` holds the numbers behind the figure worth recording in index.json (e.g. the range
    of the learnt label vectors)."""
    name: str
    title: str
    caption: str
    panels: list[Panel]
    data: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Helpers

@contextlib.contextmanager
def _eval_mode(G: nn.Module) -> Iterator[None]:
    with evaluating(G), torch.no_grad():
        yield


def _device(G: nn.Module) -> torch.device:
    return next(G.parameters()).device


def _images(G: nn.Module, z: torch.Tensor, v: torch.Tensor | None, scale: str) -> torch.Tensor:
    """uint8 images (B, C, H, W) from latents z (B, nz) and label vectors v (B, E) or None."""
    dev = _device(G)
    with _eval_mode(G):
        if getattr(G, "conditional", False):
            x = G.forward_vector(z.to(dev), v.to(dev))
        else:
            x = G(z.to(dev), None)
    return to_uint8(x, scale)


def _label_vectors(G: nn.Module, labels: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """G's label vectors (B, E) for class indices, on the CPU, float32."""
    y = torch.as_tensor(labels, dtype=torch.long)
    with _eval_mode(G):
        return G.label_vector(y).detach().float().cpu()


def _require_conditional(G: nn.Module, what: str) -> None:
    if not getattr(G, "conditional", False):
        raise ValueError(f"{what} needs a conditional generator (this one has no labels)")


def _names(G: nn.Module, classes: Sequence[str] | None) -> list[str]:
    k = int(G.num_classes)
    if classes and len(classes) == k:
        return [str(c) for c in classes]
    return [str(i) for i in range(k)]


def default_classes(num_classes: int, at_most: int = 4) -> list[int]:
    """A few classes spread over 0..K-1 for figures with one row per class."""
    if num_classes <= at_most:
        return list(range(num_classes))
    return sorted({round(i * (num_classes - 1) / (at_most - 1)) for i in range(at_most)})


# ---------------------------------------------------------------------------------------------
# Experiments

def class_diversity(G: nn.Module, per_class: int = 12, seed: int = 0, scale: str = "-1,1",
                    classes: Sequence[str] | None = None) -> ExploreFigure:
    """Many z for each label: one row per class, `per_class` independent latents per row."""
    _require_conditional(G, "class diversity")
    k = int(G.num_classes)
    z = noise(k * per_class, G.nz, seed)                         # (K*P, nz), new z every cell
    y = torch.arange(k).repeat_interleave(per_class)
    images = _images(G, z, _label_vectors(G, y), scale)
    names = _names(G, classes)
    return ExploreFigure(
        "class_diversity", "Diversity within each class",
        f"{per_class} independent latents z per class (one row per class, seed {seed}): how "
        "much the handwriting varies for a fixed label.",
        [Panel(images, per_class, row_labels=names)])


def class_means(G: nn.Module, scale: str = "-1,1",
                classes: Sequence[str] | None = None) -> ExploreFigure:
    """The "mean" image of each class: z = 0 (the mode of the latent prior) with each label."""
    _require_conditional(G, "class means")
    k = int(G.num_classes)
    z = torch.zeros(k, G.nz)
    images = _images(G, z, _label_vectors(G, range(k)), scale)
    return ExploreFigure(
        "class_means", "Class means (z = 0)",
        "Each label with z = 0, the centre of the latent prior: the generator's most typical "
        "digit of each class.",
        [Panel(images, k, col_labels=_names(G, classes))])


def interpolate_z(G: nn.Module, labels: Sequence[int] | None = None, rows: int = 4,
                  steps: int = 9, seed: int = 0, scale: str = "-1,1",
                  classes: Sequence[str] | None = None) -> ExploreFigure:
    """Between two latents z0 -> z1 with the label fixed: linear and spherical (slerp) paths
    side by side. Conditional: one row per label in `labels` (default a few classes spread
    over the range); unconditional: `rows` pairs of latents."""
    conditional = bool(getattr(G, "conditional", False))
    if conditional:
        labels = list(labels) if labels is not None else default_classes(int(G.num_classes))
        n_rows = len(labels)
        row_labels = [f"class {_names(G, classes)[c]}" for c in labels]
    else:
        n_rows = rows
        row_labels = [f"pair {i + 1}" for i in range(rows)]
    ends = noise(2 * n_rows, G.nz, seed)                           # (2R, nz): z0, z1 per row
    v = None
    if conditional:
        v = _label_vectors(G, torch.as_tensor(labels).repeat_interleave(steps))
    panels, mid_norms = [], {}
    for method, fn in (("linear", lerp), ("slerp", slerp)):
        z = torch.cat([fn(ends[2 * r], ends[2 * r + 1], steps) for r in range(n_rows)])
        images = _images(G, z, v, scale)
        mid = z.view(n_rows, steps, -1)[:, steps // 2].norm(dim=1).mean()
        mid_norms[method] = round(float(mid), 3)
        panels.append(Panel(images, steps, title=f"{method} in z", row_labels=row_labels,
                            col_labels=_t_labels(steps)))
    end_norm = round(float(ends.norm(dim=1).mean()), 3)
    return ExploreFigure(
        "interpolate_z", "Interpolation between two latents" + (" of one class" if conditional
                                                              else ""),
        f"z0 -> z1 in {steps} steps, label fixed; linear (left) and spherical (right). Mean |z| "
        f"at the ends {end_norm}, at the middle {mid_norms['linear']} (linear) vs "
        f"{mid_norms['slerp']} (slerp).",
        panels, {"end_norm": end_norm, "mid_norm": mid_norms})


def from_mean(G: nn.Module, label: int = 3, candidates: int = 8, steps: int = 9,
              seed: int = 0, scale: str = "-1,1",
              classes: Sequence[str] | None = None) -> ExploreFigure:
    """Report 002's Figure 11: from the class mean (z = 0) to a chosen sample of the same class.

    The report picked by eye a sample of label 3 "a bit visually different from the mean one";
    here the choice is reproducible: of `candidates` latents drawn with `seed`, the one whose
    image is farthest (in pixels) from the z = 0 image. The first panel shows every candidate
    (the chosen one is labelled), the second the linear path z(t) = t z*."""
    _require_conditional(G, "interpolation from the class mean")
    k = int(G.num_classes)
    if not 0 <= label < k:
        raise ValueError(f"label {label} is outside 0..{k - 1}")
    z = noise(candidates, G.nz, seed)
    v = _label_vectors(G, [label] * (candidates + 1))
    images = _images(G, torch.cat([torch.zeros(1, G.nz), z]), v, scale)
    mean, shown = images[0], images[1:]
    dist = (shown.float() - mean.float()).flatten(1).norm(dim=1)
    pick = int(dist.argmax())
    path = lerp(torch.zeros(G.nz), z[pick], steps)
    name = _names(G, classes)[label]
    cols = [""] * candidates
    cols[pick] = "chosen"
    return ExploreFigure(
        "from_mean", f"From the class mean to a chosen sample (class {name})",
        f"z = 0 (the mean digit of class {name}) to the candidate farthest from it in pixels "
        f"(of {candidates} drawn with seed {seed}), {steps} linear steps: report 002's "
        f"Figure 11.",
        [Panel(shown, candidates, title="candidates", col_labels=cols),
         Panel(_images(G, path, v[:1].expand(steps, -1), scale), steps, title="z = 0 → chosen",
               col_labels=_t_labels(steps))],
        {"label": label, "chosen": pick, "pixel_distance": round(float(dist[pick]), 2)})


def interpolate_labels(G: nn.Module, pairs: Sequence[tuple[int, int]] = LABEL_PAIRS,
                       rows: int = 3, steps: int = 9, seed: int = 0, scale: str = "-1,1",
                       classes: Sequence[str] | None = None) -> ExploreFigure:
    """Between two classes through the label input: v(t) = (1-t) v(a) + t v(b), z fixed per
    row, one panel per pair (report 002's 2 -> 8 and 3 -> 1). Works for one-hot vectors and
    for learnt embeddings alike, since it moves the vector G receives."""
    _require_conditional(G, "interpolation between classes")
    k = int(G.num_classes)
    pairs = [(int(a), int(b)) for a, b in pairs]
    bad = [p for p in pairs if not (0 <= p[0] < k and 0 <= p[1] < k)]
    if bad:
        raise ValueError(f"class pairs {bad} are outside 0..{k - 1}")
    names = _names(G, classes)
    z = noise(rows, G.nz, seed).repeat_interleave(steps, 0)              # (R*S, nz)
    panels = []
    for a, b in pairs:
        va, vb = _label_vectors(G, [a, b])
        v = lerp(va, vb, steps).repeat(rows, 1)                          # (R*S, E)
        panels.append(Panel(_images(G, z, v, scale), steps, title=f"{names[a]} → {names[b]}",
                            row_labels=[f"z{i + 1}" for i in range(rows)],
                            col_labels=_t_labels(steps)))
    text = ", ".join(f"{names[a]} → {names[b]}" for a, b in pairs)
    return ExploreFigure(
        "interpolate_labels", "Interpolation between classes through the label vector",
        f"Label vector moved linearly from one class to another ({text}) in {steps} steps, "
        f"with z fixed in each row: where the digit changes class and what lies between.",
        panels)


def noise_on_inputs(G: nn.Module, epsilons: Sequence[float] = EPSILONS, columns: int = 10,
                    seed: int = 0, scale: str = "-1,1",
                    classes: Sequence[str] | None = None) -> ExploreFigure:
    """Gaussian noise eps * N(0, I) of growing eps on z and, separately, on the label vector,
    side by side; the first row is eps = 0. Conditional: one column per class (the same base z
    in every column); unconditional: `columns` base latents, noise on z only. The same noise
    draw is scaled by each eps, so rows differ only by its size."""
    eps = [0.0] + [float(e) for e in epsilons if float(e) != 0.0]
    conditional = bool(getattr(G, "conditional", False))
    n_cols = int(G.num_classes) if conditional else columns
    base_z = noise(1, G.nz, seed).repeat(n_cols, 1) if conditional else noise(n_cols, G.nz, seed)
    row_labels = [f"ε = {e:g}" for e in eps]
    z_rows = torch.cat([add_noise(base_z, e, seed + 1) for e in eps])        # (len(eps)*cols, nz)
    if not conditional:
        return ExploreFigure(
            "noise", "Noise on the latent z",
            f"z + ε·N(0, I) for ε in {', '.join(f'{e:g}' for e in eps)} (rows), {n_cols} base "
            "latents (columns), one noise draw scaled by each ε.",
            [Panel(_images(G, z_rows, None, scale), n_cols, title="noise on z",
                   row_labels=row_labels)])
    v0 = _label_vectors(G, range(n_cols))                                    # (K, E)
    names = _names(G, classes)
    v_clean = v0.repeat(len(eps), 1)
    v_rows = torch.cat([add_noise(v0, e, seed + 2) for e in eps])
    z_clean = base_z.repeat(len(eps), 1)
    left = Panel(_images(G, z_rows, v_clean, scale), n_cols, "noise on z", row_labels, names)
    right = Panel(_images(G, z_clean, v_rows, scale), n_cols, "noise on the label vector",
                  row_labels, names)
    r = label_range(v0)
    z_norm = round(float(base_z[0].norm()), 2)
    return ExploreFigure(
        "noise", "Noise on z and on the label vector",
        f"ε·N(0, I) added to z (left, |z| = {z_norm}) or to the label vector (right, mean "
        f"|v| = {r['scale']:.2f} over {v0.shape[1]} dims), ε in "
        f"{', '.join(f'{e:g}' for e in eps)} by row; one column per class, same z.",
        [left, right], {"z_norm": z_norm, "label_scale": round(r["scale"], 4)})


def out_of_range_labels(G: nn.Module, rows: int = 5, anchor: int | None = None,
                        far_factors: Sequence[float] = FAR_FACTORS, seed: int = 0,
                        scale: str = "-1,1", classes: Sequence[str] | None = None
                        ) -> ExploreFigure:
    """Label vectors no class has (report 002, section 2.3), with z fixed per row.

    Inside the range of the learnt vectors: two random convex combinations of them
    (Dirichlet weights) and two points uniform in their per-dimension [min, max] box. Far
    outside: a learnt vector times each factor in `far_factors` (default 5 and -3) and a
    random direction 5 times as long as the average learnt vector. The learnt vector of
    `anchor` (default the middle class) is the first column, for reference."""
    _require_conditional(G, "labels outside the learnt range")
    k = int(G.num_classes)
    anchor = k // 2 if anchor is None else int(anchor)
    if not 0 <= anchor < k:
        raise ValueError(f"anchor class {anchor} is outside 0..{k - 1}")
    names = _names(G, classes)
    learnt = _label_vectors(G, range(k))                                    # (K, E)
    r = label_range(learnt)
    mix, w = convex_combinations(learnt, 2, seed)
    box = box_samples(learnt, 2, seed + 1)
    far = [learnt[anchor] * f for f in far_factors]
    rand = random_direction(learnt.shape[1], 5 * r["scale"], seed + 2)
    cols = ([learnt[anchor]] + list(mix) + list(box) + far + [rand])
    col_labels = ([f"v[{names[anchor]}]", "mix 1", "mix 2", "box 1", "box 2"]
                  + [f"{f:g}×v[{names[anchor]}]" for f in far_factors] + ["rand 5×"])
    vecs = torch.stack(cols)                                                # (V, E)
    z = noise(rows, G.nz, seed).repeat_interleave(len(cols), 0)
    images = _images(G, z, vecs.repeat(rows, 1), scale)
    # the two heaviest classes of each mix, e.g. "3:0.61, 8:0.22"
    top = [", ".join(f"{names[i]}:{float(w[j, i]):.2f}"
                     for i in torch.argsort(w[j], descending=True)[:2].tolist())
           for j in range(len(mix))]
    return ExploreFigure(
        "out_of_range_labels", "Label vectors outside the learnt ones",
        f"Columns: a learnt vector; 2 convex mixes ({'; '.join(top)}) and 2 points in the "
        f"per-dim box [{float(r['min'].min()):.2f}, {float(r['max'].max()):.2f}] (inside); "
        f"{', '.join(f'{f:g}×' for f in far_factors)} that vector and a random direction of "
        f"norm 5×{r['scale']:.2f} (far outside).",
        [Panel(images, len(cols), row_labels=[f"z{i + 1}" for i in range(rows)],
               col_labels=col_labels)],
        {"label_scale": round(r["scale"], 4), "dims": int(learnt.shape[1]),
         "box_min": round(float(r["min"].min()), 4), "box_max": round(float(r["max"].max()), 4),
         "vectors": {lab: [round(float(x), 4) for x in v] for lab, v in zip(col_labels, cols)}})


def all_figures(G: nn.Module, seed: int = 0, scale: str = "-1,1",
                classes: Sequence[str] | None = None) -> list[ExploreFigure]:
    """Every experiment that applies to G: all seven when conditional; interpolation in z and
    noise on z when unconditional."""
    if getattr(G, "conditional", False):
        k = int(G.num_classes)
        pairs = [p for p in LABEL_PAIRS if max(p) < k] or [(0, k - 1)]
        return [class_diversity(G, seed=seed, scale=scale, classes=classes),
                class_means(G, scale=scale, classes=classes),
                interpolate_z(G, seed=seed, scale=scale, classes=classes),
                from_mean(G, label=3 if k > 3 else k - 1, seed=seed, scale=scale,
                          classes=classes),
                interpolate_labels(G, pairs=pairs, seed=seed, scale=scale, classes=classes),
                noise_on_inputs(G, seed=seed, scale=scale, classes=classes),
                out_of_range_labels(G, seed=seed, scale=scale, classes=classes)]
    return [interpolate_z(G, seed=seed, scale=scale),
            noise_on_inputs(G, seed=seed, scale=scale)]


def _t_labels(steps: int) -> list[str]:
    """Column labels t = 0 ... 1 for an interpolation: only the ends and the middle."""
    out = [""] * steps
    out[0], out[-1] = "t=0", "t=1"
    if steps >= 5:
        out[(steps - 1) // 2] = f"t={(steps - 1) // 2 / (steps - 1):.2g}"
    return out
