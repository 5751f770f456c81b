"""Latent-space exploration of a trained generator (report 002, section 2).

- `experiments`: the experiments as uint8 image panels (diversity within a class, class
  means at z = 0, interpolation in z (linear and slerp), from the class mean to a chosen
  sample (report 002's Figure 11) and between classes through the label
  vector, noise on z and on the label vector, label vectors inside and far outside the
  learnt range);
- `latent`: the tensor maths behind them (lerp, slerp, noise, label-vector ranges);
- `run`: `explore_run(RUN)` writes every figure and RUN/explore/index.json (`gankit explore`).
"""
from gankit.exploration.experiments import (ExploreFigure, Panel, all_figures, class_diversity,
                                            class_means, from_mean, interpolate_labels, interpolate_z,
                                            noise_on_inputs, out_of_range_labels)

__all__ = ["ExploreFigure", "Panel", "all_figures", "class_diversity", "class_means", "from_mean",
           "interpolate_labels", "interpolate_z", "noise_on_inputs", "out_of_range_labels"]
