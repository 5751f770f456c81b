"""C kernels for the bf16 CPU paths, built on first use with the system C compiler (build.py):
the fused MLP step's Adam pass (adam.py), BatchNorm with its activation (batchnorm.py) and a
bf16 function through a table of its results (table.py)."""
