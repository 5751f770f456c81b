"""Figures as PNG (matplotlib on the Agg backend, PIL for grids and the GIF).

- `grid`: uint8 image grids (used by training for the fixed-noise grids and the composite);
- `panels`: labelled grids side by side (exploration figures, real beside generated);
- `curves`: training curves from metrics.jsonl; `charts`: grouped bars per class;
- `samples`: real beside generated, class distribution by the reference classifier;
- `animation`: the fixed-noise grid over epochs as a GIF;
- `run`: `write_plots`, every plot of a run into a folder with index.json (the run folder is
  read by `gankit.report.run_plots.write_run_plots`).
"""
