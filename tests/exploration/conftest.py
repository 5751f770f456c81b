"""Tiny trained runs shared by the exploration, plots and report tests; one torch thread."""
from tests.exploration.tiny_runs import cgan_run, one_thread, uncond_run  # noqa: F401
