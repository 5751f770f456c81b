"""The training loop, checkpoints, run folders and sampling."""
