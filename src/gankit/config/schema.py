"""The run configuration: typed dataclasses with one source of defaults.

A preset is a YAML file of overrides on these defaults. Walking, checking and converting
dotted keys lives in `keys.py`; this module only declares the fields.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from gankit.errors import GankitError


class ConfigError(GankitError):
    """A configuration key or value that gankit cannot accept; the message says how to fix it."""


@dataclass
class DataConfig:
    name: str = "mnist"            # a key of gankit.data.DATASETS
    # training images: "train" (50k of MNIST) or "train-full" (train + val: all 60k of
    # MNIST, as reports 001, 003 and 004 trained; validation images are then seen in training)
    split: str = "train"
    limit: int | None = None       # train on the first N training images only
    scale: str = "-1,1"            # "-1,1" (tanh generators) or "0,1" (reports 003, 004 as written)
    rotation: float = 0.0          # random rotation +-degrees per image (report 004: 20)
    data_dir: str | None = None    # a folder with the dataset's files (else GANKIT_DATA / cache)
    classes: list[str] | None = None  # Quick, Draw! categories (one .npy file each)


@dataclass
class ModelConfig:
    arch: str = "mlp"              # a key of gankit.models.ARCHITECTURES
    conditional: bool = True
    nz: int = 100                  # latent size
    g_cond: str = "onehot"         # how G gets the label: onehot | embedding
    d_cond: str = "embedding"      # how D gets the label: onehot | embedding | projection
    embed_dim: int = 10            # size of a learnt label embedding
    init: str = "xavier"           # xavier | dcgan | default
    g_hidden: list[int] = field(default_factory=lambda: [128, 256])   # MLP widths
    d_hidden: list[int] = field(default_factory=lambda: [256, 128])
    ngf: int = 64                  # conv generator width
    ndf: int = 64                  # conv discriminator width
    dropout: float = 0.0
    g_dropout: float = 0.0
    spectral_norm: bool = False
    batch_norm: bool = True
    # BatchNorm in a conv D: auto (as batch_norm says, but none with projection + spectral
    # norm), batch, or none (SN-GAN/BigGAN discriminators have no BN)
    d_norm: str = "auto"
    # minibatch standard deviation before a DCGAN D's last conv, in groups of this many
    # images (Karras et al. 2018; StyleGAN2 uses 4); 0 is off
    mbstd: int = 0
    # a classifier head on D's last features that predicts the label (AC-GAN, Odena et al.
    # 2017); its cross-entropy enters D's and G's losses with weight loss.aux_weight
    aux_classifier: bool = False
    # sampling only: every latent a trained G is sampled from (eval, sample, explore, grids,
    # validation) is scaled by this (the truncation trick, Brock et al. 2019 / Karras et al.
    # 2019: psi pulls z toward the mean latent, 0 for z ~ N(0, I)); training draws N(0, I)
    truncation_psi: float = 1.0
    # a distributed run (torchrun, --nproc): BatchNorm statistics over the global batch
    # (SyncBatchNorm) instead of each process's share of it
    sync_bn: bool = False


@dataclass
class LossConfig:
    name: str = "nonsaturating"    # a key of gankit.losses.LOSSES
    gp_weight: float = 10.0        # gradient penalty weight (wgan-gp)
    label_smoothing: float = 0.0   # one-sided: real targets 1 - s (BCE losses)
    d_average: bool = False        # D loss = mean of its real and fake terms (report 004), not sum
    # R1: gamma/2 E||grad_x D(x)||^2 on real images (Mescheder et al. 2018; 0: off), applied
    # every r1_every D steps with gamma scaled by r1_every (lazy, Karras et al. 2020)
    r1_gamma: float = 0.0
    r1_every: int = 1
    # with model.aux_classifier: D's loss + aux_weight x CE(D's class logits on real images,
    # their labels), G's loss + aux_weight x CE(on its images, the labels asked for)
    aux_weight: float = 1.0
    # G's weight of that term (None: aux_weight). A lighter pull leaves G more variety within
    # a class: AC-GAN's G term favours images far from the class boundaries (Shu et al. 2017;
    # Gong et al. 2019, TAC-GAN)
    g_aux_weight: float | None = None


@dataclass
class OptimConfig:
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    g_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    d_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    schedule: str = "constant"     # constant | piecewise | linear | cosine
    # piecewise: [[epoch, lr], ...] from that epoch on (report 000's M4)
    g_milestones: list[list[float]] = field(default_factory=list)
    d_milestones: list[list[float]] = field(default_factory=list)
    final_factor: float = 0.0      # linear/cosine: lr at the end = lr * final_factor


@dataclass
class EvalConfig:
    every: int = 0                 # FID & co. on the validation split every K epochs (0: off)
    n: int = 10_000                # generated and real images compared
    features: str = "classifier"   # classifier | inception
    split: str = "val"


@dataclass
class TrainConfig:
    preset: str = "default"
    report: str = ""               # the report this preset reproduces ("report 000 (...): ...")
    notes: str = ""                # values the report left open and why they were chosen
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    # CPU threads for PyTorch (0: PyTorch's default, one per core). Small models run fastest
    # on one thread: their ops are too small to split, and idle threads spin (benchmarks/).
    threads: int = 0
    d_steps: int = 1               # D steps per G step (report 002's "discriminator advantage")
    # D steps on each batch (the same real images, fresh noise each) before its G step: the
    # other reading of report 002's "discriminator advantage" (docs/reproduction.md)
    d_steps_per_batch: int = 1
    adaptive_d_steps: bool = False  # report 002: one more D step while D accuracy < threshold
    adaptive_threshold: float = 0.8
    max_d_steps: int = 16
    ema: float = 0.0               # EMA decay of G's weights (0: off); EMA G is used for samples
    # EMA warm-up: its half-life is at most ema_rampup x the steps done (Karras et al. 2020
    # use 0.05), so early weights fade fast; 0: off (the decay from the first step)
    ema_rampup: float = 0.0
    # DiffAugment (Zhao et al. 2020) of every image D sees, real and generated, in D's and G's
    # steps: none, or policies joined by commas (translation, cutout)
    augment: str = "none"
    sample_every: int = 1          # fixed-noise grid every N epochs
    checkpoint_every: int = 1
    # training statistics every N steps (D steps) as well, to steps.jsonl: losses per
    # iteration (report 001's Figure 1, report 003's loss plot); 0: per epoch only
    log_every: int = 0
    grad_clip: float = 0.0         # 0: off
    val_diagnostics: int = 2048    # validation images used for the held-out diagnostics per epoch
    precision: str = "auto"        # fp32 | bf16 | auto (bf16 where the device has it natively)
    compile: str = "auto"          # on | off | auto (on for CUDA; on CPU it did not pay here)
    # the training step: fused (hand-written MLP step, training/mlp_step.py) | autograd |
    # auto (fused where it covers the config, else autograd)
    step: str = "auto"
    # layout of G's and D's convolution weights (and so of their activations):
    # channels_last | contiguous (training/fast.py; an MLP has no 4-D tensors to lay out)
    memory_format: str = "channels_last"
    # how the C allocator serves CPU tensors: keep (freed memory stays with the process, no
    # page faults in the next step) | system (the C library's defaults); training/allocator.py
    cpu_allocator: str = "keep"
    # how convolutions, BatchNorm and Adam compute: fast (the same function by faster routes,
    # models/kernels.py; bf16 BatchNorm with its activation and the fused MLP step's bf16 Adam
    # as C kernels, gankit/native) | plain (the layers' own forward; torch's Adam passes)
    kernels: str = "fast"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def to_dict(cfg: Any) -> dict:
    """A plain dict (YAML/JSON-ready) of a config dataclass."""
    return dataclasses.asdict(cfg)


def config_key(cfg: Any, ignore: tuple[str, ...] = ()) -> str:
    """A string equal for two configs exactly when their values are (top-level keys in
    `ignore` left out): what makes two points of a sweep the same run."""
    return json.dumps({k: v for k, v in to_dict(cfg).items() if k not in ignore},
                      sort_keys=True)
