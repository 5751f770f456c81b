"""C kernels for the bf16 CPU paths, built on first use with the system C compiler (build.py):
the fused MLP step's Adam pass (adam.py) and BatchNorm with its activation (batchnorm.py)."""
