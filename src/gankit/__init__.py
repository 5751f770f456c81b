"""gankit: train, evaluate, compare and explore GANs on MNIST and other small image sets."""
from gankit import log as _log  # noqa: F401 - gives the "gankit" logger its stderr handler

__version__ = "0.1.0"
