"""From a checked view to latents, images and the discriminator's scores.

The latents of a view: z = noise(n, nz, seed) + sum_k slider_k * direction_k, plus
z_noise * N(0, I) (drawn from seed + 1); for a conditional G, every sample gets the label
vector v = v(class) + t * (v(to) - v(class)), plus label_noise * N(0, I) (seed + 2). Runs of
the same nz share z exactly, so two runs side by side show the same latents.

D's score is sigmoid(D(x, y)) with y the class nearest on the label path (class when t < 0.5,
else `to`), D in eval mode: BatchNorm uses its running statistics, so a sample's score depends
on that sample alone, not on the rest of the grid. (The training diagnostics judge on batch
statistics instead, `gankit.models.base.judging`; on a grid of generated images only, that
pushed every score of the `default` run to ~1e-4 where eval mode gives 0.01-0.15.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.data.image import to_uint8
from gankit.exploration.latent import add_noise, lerp, slerp
from gankit.sampling import noise
from gankit.serve.models import ServedModel
from gankit.serve.query import Limits, PathQuery, View


@dataclass
class Batch:
    """Images of one model, uint8 (N, C, H, W), and D's probability that each is real (N,)
    (NaN when the model has no discriminator)."""
    images: torch.Tensor
    scores: torch.Tensor


def limits_of(models: list[ServedModel], max_samples: int) -> Limits:
    """The request limits of a set of served models (classes shared by all conditional ones)."""
    ks = [m.num_classes for m in models if m.conditional]
    return Limits(num_classes=min(ks) if ks else 0,
                  directions=min(len(d.vectors) for m in models for d in m.directions.values()),
                  runs=len(models), max_samples=max_samples)


def latents(model: ServedModel, view: View) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The view's z (n, nz) and label vectors (n, E) (None when G is unconditional)."""
    G = model.run.G
    z = noise(view.n, int(G.nz), view.seed)
    if view.sliders:
        dirs = model.directions[view.basis].vectors[:len(view.sliders)]          # (k, nz)
        z = z + torch.tensor(view.sliders, dtype=z.dtype) @ dirs
    if view.z_noise:
        z = add_noise(z, view.z_noise, view.seed + 1)
    if not model.conditional:
        return z, None
    to = view.label if view.to is None else view.to
    with torch.no_grad():
        va, vb = G.label_vector(torch.tensor([view.label, to])).float().cpu()
    v = (va + view.t * (vb - va)).repeat(view.n, 1)
    if view.label_noise:
        v = add_noise(v, view.label_noise, view.seed + 2)
    return z, v


def d_label(view: View) -> int:
    """The class D is asked about: the nearer end of the label path."""
    return view.to if view.to is not None and view.t >= 0.5 else view.label


@torch.no_grad()
def render(model: ServedModel, z: torch.Tensor, v: torch.Tensor | None, label: int) -> Batch:
    """G's images for (z, v) and D's probability that each is real (both in eval mode)."""
    run = model.run
    dev = next(run.G.parameters()).device
    x = run.G.forward_vector(z.to(dev), None if v is None else v.to(dev))
    y = None
    if model.conditional:
        y = torch.full((len(z),), label, dtype=torch.long, device=dev)
    if run.D is None:  # a pretrained model ships G alone: no score to give
        scores = torch.full((len(z),), float("nan"))
    else:
        scores = torch.sigmoid(run.D(x, y)).float().cpu()
    return Batch(to_uint8(x, run.cfg.data.scale), scores)


def grid(model: ServedModel, view: View) -> Batch:
    """The view's grid of n samples."""
    z, v = latents(model, view)
    return render(model, z, v, d_label(view))


def path(model: ServedModel, query: PathQuery) -> Batch:
    """`steps` samples on the way from sample a to sample b of the view's grid: z linear or
    spherical (`gankit.exploration.latent`), the label vector linear."""
    z, v = latents(model, query.view)
    fn = slerp if query.method == "slerp" else lerp
    zp = fn(z[query.a], z[query.b], query.steps)
    vp = None if v is None else lerp(v[query.a], v[query.b], query.steps)
    return render(model, zp, vp, d_label(query.view))
