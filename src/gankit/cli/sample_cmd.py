"""`gankit sample`: images from a trained run (or a pretrained model) as a PNG grid and an .npz."""
from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.args import count
from gankit.errors import UserError


def run(args: argparse.Namespace) -> int:
    """Sample a run or a pretrained model: the image shape and classes come from its
    checkpoint, not its data."""
    import numpy as np
    from gankit.plots.grid import save_grid
    from gankit.pretrained.source import check_source, load_source
    from gankit.sampling import generate, set_truncation
    check_source(args.run, args.pretrained)
    r = load_source(args.run, args.pretrained, which=args.which, device=args.device)
    psi = set_truncation(r.G, args.truncation)
    labels = None if args.labels == "balanced" else args.labels
    k = int(getattr(r.G, "num_classes", 0))
    if labels is not None and not (labels.isdigit() and int(labels) < max(k, 1)):
        raise UserError(f"--label {labels!r}: give balanced or a class index 0-{max(k, 1) - 1}"
                        if k else f"--label {labels!r}: this generator is unconditional; "
                        "drop --label")
    images, y = generate(r.G, args.n, labels or "balanced", seed=args.seed,
                         scale=r.cfg.data.scale)
    out = Path(args.out)
    npz = out.with_suffix(".npz")
    png = out.with_suffix(".png")
    npz.parent.mkdir(parents=True, exist_ok=True)
    arr = images.numpy()
    arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
    np.savez_compressed(npz, images=arr, labels=np.full(len(arr), -1) if y is None else y.numpy())
    show = min(args.n, args.grid)
    if y is not None and labels is None:  # one row per class, like the training grids
        k = r.G.num_classes
        per = max(1, show // k)
        order = np.concatenate([np.nonzero(y.numpy() == c)[0][:per] for c in range(k)])
        save_grid(images[order], png, nrow=per)
    else:
        save_grid(images[:show], png, nrow=10)
    trunc = f", truncation psi {psi:g}" if psi != 1.0 else ""
    print(f"wrote {npz} ({len(arr)} images uint8 {arr.shape[1:]}{trunc}) and {png}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="write samples of a run as a PNG grid and an .npz",
                       description="Sample a trained run or a pretrained model: an .npz of "
                                   "uint8 images with labels and a PNG grid.")
    p.add_argument("run", nargs="?", help="run folder")
    p.add_argument("--pretrained", metavar="NAME",
                   help="sample a pretrained model shipped with gankit instead of a run "
                        "(`gankit pretrained list`; e.g. default), or a path to NAME.pt")
    p.add_argument("--n", type=count, default=10_000, help="number of images (default 10000)")
    p.add_argument("--labels", "--label", dest="labels", default="balanced",
                   help="balanced (equal per class) or a class index 0-9 (default balanced)")
    p.add_argument("--out", default="samples", help="output path without suffix (default samples)")
    p.add_argument("--seed", type=int, default=0, help="noise seed: a seed identifies a sample")
    p.add_argument("--which", default="best",
                   help="checkpoint: best, last or a checkpoint file (default best)")
    p.add_argument("--grid", type=count, default=100, help="images in the PNG grid (default 100)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="scale the latents by PSI: below 1, more typical and less varied "
                        "samples (default: the run's model.truncation_psi)")
    p.set_defaults(func=run)
