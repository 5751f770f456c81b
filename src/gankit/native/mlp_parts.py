"""The fused MLP step's small elementwise work in C (`csrc/mlp_parts.c`): G's and D's inputs;
D's one-logit head with the BCE loss, its statistics and gradients; each layer's activation
backward with its bias gradient; a label embedding's gradient.

Between its GEMMs report 000's MLP step ran some 40 torch operations on 64-256-row tensors, each
costing more in dispatch (5-15 us) than in arithmetic; each group here is one call, fp32 or
bf16, built for AVX-512 CPUs like native/adam.py (native/build.py). Tensors are passed by
address: the callers (training/mlp_step.py) pass CPU tensors of the shapes each function
documents (types and contiguity are checked). Where it cannot run (`why_not()`) the step
runs torch's operations; `kernels: plain` chooses them.
"""
from __future__ import annotations

import ctypes

import torch

from gankit.errors import GankitError
from gankit.native import build, onednn, program

NAME = "mlp_parts"
_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
KERNEL = build.Kernel(NAME, (
    ("gankit_head_d", None, (_I, _I, _I, ctypes.c_int, _P, _P, _P, _P, _P, ctypes.c_int, _F, _F,
                             _P, _P, _I, _P, _P, _P, _P)),
    ("gankit_head_g", None, (_I, _I, _I, ctypes.c_int, _P, _P, _P, _P, _P, ctypes.c_int,
                             ctypes.c_int, _P, _I, _P, _I, _P)),
    ("gankit_act_bwd", None, (_I, _I, _I, ctypes.c_int, _P, _I, _I, _P, _P, ctypes.c_int, _P,
                              _P)),
    ("gankit_embed_grad", None, (_I, _I, _I, _I, _I, ctypes.c_int, _P, _P, _P, _I, _I, _P)),
    ("gankit_g_input", ctypes.c_int, (_I, _I, _I, _I, _I, ctypes.c_int, _P, _P, _P, _P)),
    ("gankit_d_input", ctypes.c_int, (_I, _I, _I, _I, _I, ctypes.c_int, _P, _P, _P, _P, _P, _P)),
    ("gankit_run", ctypes.c_int, (_I, _P)),
))
kernel, why_not = KERNEL.load, KERNEL.why_not

# activation codes: csrc/mlp_parts.c numbers them as csrc/onednn_matmul.c does
ACTS = onednn.ACTS


# says once why the step's small work goes through torch here
report_unavailable = build.reporter("the fused step's elementwise work through torch",
                                    lambda: why_not())


def _call(name: str, op: int, *args: int | float | None) -> int:
    """Call C function `name`, or, while a program is recorded (native/program.py), append
    the call to it as operation `op` (then 0: a recorded input call checks its labels when
    the program runs)."""
    prog = program.active()
    if prog is not None:
        prog.add(op, *args)
        return 0
    return getattr(kernel(), name)(*args)


def run(prog: program.Program, dynamic: dict[str, torch.Tensor | None], classes: int) -> None:
    """Run a recorded program with this step's dynamic tensors (the batch, the labels; a
    label outside 0..classes-1 refused as the input calls refuse it)."""
    arr = prog.array(dynamic)
    run_words, base, start = kernel().gankit_run, ctypes.addressof(arr), 0
    for end, call in (*prog.calls, (len(arr), None)):
        code = run_words(end - start, base + 8 * start) if end > start else 0
        if code == program.BAD_LABELS:
            raise _labels_refused(classes)
        if code:
            raise RuntimeError(onednn.kernel().gankit_mm_error().decode()
                               if code == program.FAILED_GEMM else "a malformed native program")
        if call is not None:
            call()
        start = end


def _bf(t: torch.Tensor, *contiguous: torch.Tensor | None) -> int:
    """1 for a bf16 tensor t, 0 for fp32 (anything else refused); the tensors `contiguous`
    (their addresses are read as such) checked to be."""
    if t.dtype not in (torch.float32, torch.bfloat16) or t.device.type != "cpu":
        raise ValueError("the MLP step's C parts take fp32 or bf16 CPU tensors")
    for c in contiguous:
        if c is not None and not c.is_contiguous():
            raise ValueError("the MLP step's C parts take contiguous features, masks and "
                             "outputs")
        if c is not None and not c.is_floating_point() and c.dtype != torch.int64:
            raise ValueError("the MLP step's C parts take int64 labels")
    return int(t.dtype == torch.bfloat16)


def head_d(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, wd: torch.Tensor,
           mask: torch.Tensor | None, act: str | None, t_real: float, scale: float,
           logits: torch.Tensor, stats: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor,
           dh: torch.Tensor, db: torch.Tensor | None) -> None:
    """D's step at its head, K members (the leading dimension; none for one run) at once:
    from the last hidden layer's features h (K, 2b, n) of [real; fake] (activation type) and
    the head's fp32 weight w (K, 1, n) and bias (K, 1), the logits (K, 2b) fp32; stats
    (K, >= 5): the BCE loss (targets t_real and 0) summed and times `scale`, each half's mean
    sigmoid and share of logits on its side of 0; the logits' gradient (sigmoid - target) *
    scale; from it the head's gradients gw (K, 1, n), gb (K, 1) fp32, and dh (K, 2b, n): back
    through the head (by wd, its weight in the activation type), the layer's dropout mask
    and activation; db (K, n): that layer's bias gradient (or None)."""
    k, rows, n = (1, *h.shape) if h.ndim == 2 else h.shape
    _call("gankit_head_d", program.HEAD_D, k, rows // 2, n, _bf(h, h, mask, dh, db),
          h.data_ptr(), w.data_ptr(), bias.data_ptr(), wd.data_ptr(), build.ptr(mask),
          ACTS[act], t_real, scale, logits.data_ptr(), stats.data_ptr(),
          stats.stride(-2) if stats.ndim == 2 else 0, gw.data_ptr(), gb.data_ptr(),
          dh.data_ptr(), build.ptr(db))


def head_g(h: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, wd: torch.Tensor,
           mask: torch.Tensor | None, act: str | None, minimax: bool, logits: torch.Tensor,
           loss: torch.Tensor, dh: torch.Tensor) -> None:
    """The G step at D's head, K members at once: from D's last hidden features on the fake
    half h (K, b, n) the logits (K, b; rows contiguous, members at their stride), G's loss
    (K,; minimax -mean softplus(l), else mean softplus(-l)) and dh (K, b, n), the gradient back
    through the head, that layer's dropout mask and activation."""
    k, rows, n = (1, *h.shape) if h.ndim == 2 else h.shape
    _call("gankit_head_g", program.HEAD_G, k, rows, n, _bf(h, h, mask, dh), h.data_ptr(),
          w.data_ptr(), bias.data_ptr(), wd.data_ptr(), build.ptr(mask), ACTS[act],
          int(minimax), logits.data_ptr(), logits.stride(0) if logits.ndim == 2 else 0,
          loss.data_ptr(), loss.stride(0) if loss.ndim == 1 else 0, dh.data_ptr())


def act_bwd(dh: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, act: str | None,
            db: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor:
    """dh (K, rows, n; rows may be strided, elements contiguous) times the dropout mask,
    through the activation from its output y (contiguous like dh), in place or into `out`
    (contiguous, dh's shape: a strided dh's GEMMs after it read contiguous rows); db (K, n) =
    the rows' sum (or None). Returns dh or out."""
    k, rows, n = (1, *dh.shape) if dh.ndim == 2 else dh.shape
    if dh.stride(-1) != 1 or (out is not None
                              and (out.shape, out.dtype) != (dh.shape, dh.dtype)):
        raise ValueError("act_bwd takes rows of contiguous elements, and an output of their "
                         "shape and type")
    _call("gankit_act_bwd", program.ACT_BWD, k, rows, n, _bf(dh, y, mask, db, out),
          dh.data_ptr(), dh.stride(0) if dh.ndim == 3 else 0, dh.stride(-2), y.data_ptr(),
          build.ptr(mask), ACTS[act], build.ptr(db), build.ptr(out))
    return dh if out is None else out


def embed_grad(dh: torch.Tensor, y: torch.Tensor, w_cols: torch.Tensor,
               g: torch.Tensor) -> None:
    """A label embedding's gradient g (K, C, E) fp32: the first Linear's output gradient dh
    (K, rows, out) summed per label y (K, rows), times w_cols (K, out, E), the columns of
    that Linear's weight which read the embedding (a strided view)."""
    k, rows, out = (1, *dh.shape) if dh.ndim == 2 else dh.shape
    c, e = g.shape[-2:]
    _call("gankit_embed_grad", program.EMBED_GRAD, k, rows, out, e, c, _bf(dh, dh, y, g),
          dh.data_ptr(), y.data_ptr(), w_cols.data_ptr(),
          w_cols.stride(0) if w_cols.ndim == 3 else 0, w_cols.stride(-2), g.data_ptr())


def _labels_refused(classes: int) -> GankitError:
    return GankitError(f"a label outside 0..{classes - 1} in this batch: the dataset's labels "
                       f"do not match the model's {classes} classes (check data.name and the "
                       "dataset's files)")


def g_input(z: torch.Tensor, y: torch.Tensor | None, table: torch.Tensor | None,
            classes: int, xg: torch.Tensor) -> None:
    """G's input xg (K, b, nz + E) in the activation type: the noise z (K, b, nz; fp32), then
    each row's label vector: row y of the fp32 embedding table (K, classes, E), or one-hot
    (table None, E = classes); E = 0 for an unconditional G (y None)."""
    k, b, nz = (1, *z.shape) if z.ndim == 2 else z.shape
    e = xg.shape[-1] - nz
    bf = _bf(xg, z, xg, y, table)
    if z.dtype != torch.float32:
        raise ValueError("g_input takes fp32 noise")
    if _call("gankit_g_input", program.G_INPUT, k, b, nz, e, classes, bf, z.data_ptr(),
             build.ptr(y), build.ptr(table), xg.data_ptr()):
        raise _labels_refused(classes)


def d_input(x: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None,
            table: torch.Tensor | None, classes: int, xd: torch.Tensor,
            y2: torch.Tensor) -> None:
    """D's input xd (K, 2b, img + E) in the activation type: the real images x (K, b, ...;
    fp32) over G's output fake (K, b, img; the activation type), each row followed by its
    label vector (as `g_input`'s; E = 0: none), and y2 (K, 2b) = [y; y] (when E)."""
    k, b2, width = (1, *xd.shape) if xd.ndim == 2 else xd.shape
    img = fake.shape[-1]
    bf = _bf(xd, x, fake, xd, y, table, y2)
    if x.dtype != torch.float32 or fake.dtype != xd.dtype or x.numel() != k * b2 // 2 * img:
        raise ValueError("d_input takes fp32 images and G's output in D's input type")
    if _call("gankit_d_input", program.D_INPUT, k, b2 // 2, img, width - img, classes, bf,
             x.data_ptr(), fake.data_ptr(), build.ptr(y), build.ptr(table), xd.data_ptr(),
             y2.data_ptr()):
        raise _labels_refused(classes)
