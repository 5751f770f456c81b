"""How a label reaches a network, shared by every family: one-hot or learnt embedding vectors,
label planes for convolutional inputs, and the projection head of Miyato & Koyama (2018).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# "onehot+cbn": the one-hot vector joined to z and, in every BatchNorm of G, a gain and bias
# per class (conditional BatchNorm: de Vries et al. 2017; the G of Miyato & Koyama 2018 and
# BigGAN), so the label reaches every layer, not only the first.
G_CONDS = ("onehot", "embedding", "onehot+cbn")
# "none": D does not see the label while G does (report 001's question 7).
# "onehot+projection": one-hot planes at D's input and the projection term on its logit, both
# (docs/default.md: without BN in D, the input planes alone condition weakly).
D_CONDS = ("onehot", "embedding", "projection", "none", "onehot+projection")


def projects(mode: str) -> bool:
    """Whether D's conditioning `mode` adds the projection term to the logit."""
    return mode in ("projection", "onehot+projection")


def conditional_norm(mode: str) -> bool:
    """Whether G's conditioning `mode` gives G's BatchNorm layers per-class gains and biases."""
    return mode.endswith("+cbn")


def joined(mode: str) -> str | None:
    """The label vector `mode` joins to D's input or features (onehot, embedding), or None."""
    return {"onehot": "onehot", "embedding": "embedding", "onehot+projection": "onehot"}.get(mode)


def check_labels(y: torch.Tensor | None, num_classes: int, who: str) -> torch.Tensor:
    """The labels of a conditional model as int64 (B,), or a ValueError saying what is wrong."""
    if y is None:
        raise ValueError(f"{who} is conditional ({num_classes} classes): pass labels y (B,) int64")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{who}: labels must be integers, got {y.dtype}")
    y = y.reshape(-1).long()
    # One host sync per call; cheap next to the models and it turns an opaque index error into
    # a readable one. Skipped while torch.compile traces (compile=on, training/fast.py): a sync
    # would split the compiled graph, and training labels come from a checked dataset.
    if torch.compiler.is_compiling():
        return y
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{who}: labels must lie in [0, {num_classes - 1}], "
                         f"got min {int(y.min())}, max {int(y.max())}")
    return y


class LabelEncoder(nn.Module):
    """A label as a vector (B, dim): one-hot (dim = num_classes) or a learnt embedding
    (dim = embed_dim). The vector is what `G.label_vector` exposes for exploration."""

    def __init__(self, mode: str, num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.mode = mode
        self.num_classes = num_classes
        if mode == "embedding":
            self.embed: nn.Embedding | None = nn.Embedding(num_classes, embed_dim)
            self.dim = embed_dim
        else:
            self.embed = None
            self.dim = num_classes

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        y = check_labels(y, self.num_classes, "label encoder")
        if self.embed is not None:
            return self.embed(y)
        return F.one_hot(y, self.num_classes).to(torch.get_default_dtype())

    def extra_repr(self) -> str:
        return f"mode={self.mode}, num_classes={self.num_classes}, dim={self.dim}"


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias come from the label vector v (B, E): BN without its own
    affine, then x * (1 + v Wg) + v Wb. With one-hot v each class owns a gain and a bias;
    an interpolated or noisy v (exploration) mixes them. Wg and Wb are linear layers without
    bias, so the init schemes draw them as G's other weights (N(0, 0.02) for `dcgan`: near
    plain BN at the start)."""

    def __init__(self, channels: int, label_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(label_dim, channels, bias=False)
        self.bias = nn.Linear(label_dim, channels, bias=False)

    def forward(self, h: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        v = v.to(h.dtype)
        return torch.addcmul(self.bias(v)[:, :, None, None], self.bn(h),
                             1 + self.gain(v)[:, :, None, None])


def join_planes(h: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A map h (B, C, H, W) with a label vector v (B, E) joined as E constant planes:
    (B, C + E, H, W) (Reed et al. 2016), in h's layout: `cat` with the broadcast planes
    wrote a channels-last h contiguous, and the BatchNorm kernel and convolution after it
    reordered it back (report 002's D, the middle block)."""
    planes = v.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])
    if not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
        planes = planes.contiguous(memory_format=torch.channels_last)
    return torch.cat([h, planes], dim=1)


class PlanesConv2d(nn.Conv2d):
    """A convolution of an image x (B, C, H, W) joined with its label vector v (B, E) as E
    constant planes: conv(join_planes(x, v)), the first layer of a conv D that sees the label
    at its input. One weight over the C + E joined channels, as an nn.Conv2d of the joined
    input has (the same parameters and state_dict keys); `kernels: fast` computes the planes'
    part another way (models/kernels.py)."""

    def __init__(self, image_channels: int, label_dim: int, out_channels: int,
                 kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__(image_channels + label_dim, out_channels, kernel_size, stride, padding,
                         bias=bias)
        self.label_dim = label_dim

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(join_planes(x, v))


# Layers that take the label vector v as a second argument.
_LABELLED = (ConditionalBatchNorm2d, PlanesConv2d)


class LabelledSequential(nn.Sequential):
    """nn.Sequential whose label-taking layers (conditional BatchNorm, a convolution of label
    planes) also get the label vector v (None for an unconditional net, which has none)."""

    def forward(self, h: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            h = layer(h, v) if isinstance(layer, _LABELLED) else layer(h)
        return h


class Projection(nn.Module):
    """The class term of a projection discriminator: <embed(y), h> (Miyato & Koyama 2018).

    Added to an unconditional logit psi(h). The embedding starts Xavier-uniform as in the
    authors' code (the init schemes leave embeddings alone)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, dim), (B,) -> (B,)
        return (self.embed(y) * h).sum(dim=1)


class DCond(nn.Module):
    """A discriminator's conditioning as configured by `model.d_cond`.

    `onehot`/`embedding`: `vector(y)` gives the label vector to join to the input (MLP) or to
    broadcast as planes (conv nets), `dim` channels. `projection`: `project(h, y)` gives the
    class term to add to the logit; `dim` is 0 (nothing is joined). `onehot+projection`: both."""

    def __init__(self, mode: str, num_classes: int, embed_dim: int, feat_dim: int) -> None:
        super().__init__()
        self.mode = mode
        self.num_classes = num_classes
        vector = joined(mode)
        self.encoder = LabelEncoder(vector, num_classes, embed_dim) if vector else None
        self.projection = Projection(num_classes, feat_dim) if projects(mode) else None
        self.dim = self.encoder.dim if self.encoder is not None else 0

    def vector(self, y: torch.Tensor) -> torch.Tensor | None:
        return None if self.encoder is None else self.encoder(y)

    def project(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor | int:
        return 0 if self.projection is None else self.projection(h, y)


def d_cond_dim(mode: str, num_classes: int, embed_dim: int) -> int:
    """How many channels/features `mode` joins to a discriminator's input (0 for projection)."""
    vector = joined(mode)
    if num_classes == 0 or vector is None:
        return 0
    return num_classes if vector == "onehot" else embed_dim
