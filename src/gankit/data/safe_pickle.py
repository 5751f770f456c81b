"""Load the data pickles that datasets ship (CIFAR-10 batches, mnist.pkl.gz) without running code.

A pickle names functions that the loader calls; an ordinary `pickle.load` calls whatever it
names. This unpickler resolves only the few NumPy constructors that an array's pickle uses
(and `_codecs.encode`, which Python 3 writes for bytes under protocol 2), and refuses
anything else, so a tampered file fails with a DataError instead of executing.
"""
from __future__ import annotations

import codecs
import io
import pickle
from typing import Any

import numpy as np

from gankit.data.errors import DataError

_probe = np.zeros(1, np.uint8)
_RECONSTRUCT = _probe.__reduce__()[0]       # numpy's multiarray._reconstruct
_FROMBUFFER = _probe.__reduce_ex__(5)[0]    # numpy's numeric._frombuffer (protocol 5)

# (module, name) as written in the pickle -> the object it may stand for. The objects are
# taken from the running NumPy, so pickles written by NumPy 1 (numpy.core) or 2 (numpy._core)
# both load without importing deprecated module names.
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): codecs.encode,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a function or class outside the allowed list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only NumPy arrays and plain Python containers."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"refusing to load {module}.{name}: only NumPy arrays "
                                         "and plain containers are allowed") from None


def safe_loads(data: bytes, name: str) -> Any:
    """Unpickle `data` (Python 2 pickles too, strings decoded as latin-1) with only the
    allowed constructors; `name` is the file named in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except ForbiddenGlobal as e:
        raise DataError(f"{name}: {e}; the file is not the expected data pickle (corrupt or "
                        "tampered with): delete it and fetch it again") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError) as e:
        raise DataError(f"{name}: cannot unpickle it ({type(e).__name__}: {e}); the file is "
                        "truncated or corrupt: delete it and fetch it again") from None
