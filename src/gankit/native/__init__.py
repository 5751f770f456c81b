"""C kernels for the CPU paths, built on first use with the system C compiler (build.py):
the fused MLP step's Adam pass (adam.py), its GEMMs as kept oneDNN primitives (onednn.py) and
its small work between them (mlp_parts.py) replayed as recorded programs (program.py), BatchNorm
with its activation (batchnorm.py), the scatter of a transposed convolution computed as a GEMM
(col2im.py) and its reverse, a map's windows (im2col.py), a map's batch and channel axes
swapped (swap_axes.py) and a bf16 function through a table of its results (table.py)."""
