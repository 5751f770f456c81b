"""Names of the numbers gankit reports (torch-fidelity's rule: results keyed by constants).

The training loop writes them to metrics.jsonl with a "val/" prefix; `gankit eval` writes
them to RUN/eval/metrics.json. Per-class values use `per_class(KEY, k)`.
"""
FID = "fid"                    # Fréchet distance of feature Gaussians (lower is better)
KID = "kid"                    # kernel inception distance: unbiased MMD^2, mean over subsets
KID_STD = "kid_std"            # its standard deviation over subsets
PRECISION = "precision"        # Kynkäänniemi et al. 2019, k=3: share of samples on real manifold
RECALL = "recall"              # share of real images on the samples' manifold
DENSITY = "density"            # Naeem et al. 2020, k=5 (can exceed 1)
COVERAGE = "coverage"          # share of real neighbourhoods that hold a sample
IS = "is"                      # Inception Score with the reference classifier ("MNIST score")
IS_STD = "is_std"              # its standard deviation over the 10 splits
LABEL_ACC = "label_acc"        # conditional: share classified as their conditioning label
INTRA_FID = "intra_fid"        # conditional: mean over classes of the FID within a class
MODES = "modes"                # classes holding at least half their fair share (0.5/K) of samples
CLASS_KL = "class_kl"          # KL(sample class histogram || uniform), 0 when balanced
N = "n"                        # samples compared
SHARE = "share"                # per class only: share of samples the classifier assigns to it

# The keys every evaluation gives (conditional models add LABEL_ACC and INTRA_FID).
SUMMARY = (FID, KID, KID_STD, PRECISION, RECALL, DENSITY, COVERAGE, IS, IS_STD, MODES, CLASS_KL)
CONDITIONAL = (LABEL_ACC, INTRA_FID)


def per_class(key: str, k: int) -> str:
    """The per-class version of a key, e.g. per_class(LABEL_ACC, 3) == 'label_acc/3'."""
    return f"{key}/{k}"
