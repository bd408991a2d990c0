"""Reordering the lines of a buffer: the step of the shuffle that copies every byte.

:func:`gather_lines` takes a buffer of whole lines, the line boundaries and an order, and
returns the lines in that order. With pyarrow installed (the ``parquet`` extra, or the
``train`` extra through ``datasets``) the copy is one ``take`` in C++: no Python object per line, and the
GIL is released, so hashing and writing on the worker thread run alongside. Without it
(the Lambda layer) the lines are split into ``bytes`` and joined again. Both give the same
bytes, so a mix does not depend on which one ran.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

try:  # optional: the parquet extra
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - depends on the install
    pa = None

# Tests switch this off to exercise the pure-Python path where pyarrow is installed.
USE_PYARROW = pa is not None


def gather_lines(data: bytes, bounds: np.ndarray, order: np.ndarray) -> memoryview:
    """Lines of ``data`` in ``order``: line ``i`` is ``data[bounds[i]:bounds[i + 1]]``,
    newline included (``bounds``: int64, one more entry than lines). ``order`` may repeat
    or leave out lines."""
    if len(order) == 0:
        return memoryview(b"")
    if USE_PYARROW:
        lines = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
        )
        indices = np.ascontiguousarray(order, dtype=np.int64)
        positions = pa.Array.from_buffers(pa.int64(), len(indices), [None, pa.py_buffer(indices)])
        taken = pc.take(lines, positions)
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64, count=len(taken) + 1)
        # The data buffer may be padded past the last line: cut it at the last offset.
        return memoryview(taken.buffers()[2])[offsets[0] : offsets[-1]]
    first, last = int(bounds[0]), int(bounds[-1])
    text = data if first == 0 and last == len(data) else data[first:last]
    lines = text.split(b"\n")
    lines.pop()  # the empty string after the last newline
    picked = itemgetter(*order.tolist())(lines) if len(order) > 1 else (lines[int(order[0])],)
    # A trailing empty item gives the last newline without copying the result again.
    return memoryview(b"\n".join((*picked, b"")))
