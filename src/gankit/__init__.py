"""gankit: train, evaluate, compare and explore GANs on MNIST and other small image sets."""
__version__ = "0.1.0"
