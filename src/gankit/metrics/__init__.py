"""Evaluation of generators: feature spaces, FID/KID/PRDC/IS, class metrics, the protocol.

Stages (torch-fidelity's design): images -> features (`features.py`: the reference
classifier's 128-d penultimate layer, or Inception-v3 through torch-fidelity) -> statistics
(`fid.FeatureStats`, k-NN radii; cached on disk for real splits) -> numbers (`fid`, `kid`,
`prdc`, `classes`), all float64 NumPy/SciPy pure functions. `evaluate.evaluate_generator` runs
the protocol; results are keyed by the constants in `keys`.

Decisions, in one place:
- Feature space "classifier" (default): a small CNN trained on the `train` split only (val
  and test are unseen by it), weights shipped in `metrics/weights/` and sha256-checked.
- FID refuses n <= d (a singular covariance); its matrix square root is exact and real via
  two symmetric eigendecompositions (no sqrtm, no eps offset, no imaginary parts).
- KID: unbiased MMD^2, polynomial kernel (x.y/d + 1)^3, 100 subsets of min(1000, n).
- Precision/recall with k=3 (Kynkäänniemi et al.), density/coverage with k=5 (Naeem et al.),
  closed balls.
- IS and class metrics always come from the reference classifier, whatever the feature space.
- Intra-class FID only when every class has more samples than feature dimensions.
- Real images: the whole split when n >= its size, else a fixed random subset (seed 0).
"""
from gankit.metrics import keys

__all__ = ["keys"]
