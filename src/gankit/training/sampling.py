"""Moved to `gankit.sampling` (the models layer, so metrics and plots can draw samples).

Kept only for callers not yet updated; import from `gankit.sampling`."""
from gankit.sampling import balanced_labels, generate, grid_inputs, noise

__all__ = ["balanced_labels", "generate", "grid_inputs", "noise"]
