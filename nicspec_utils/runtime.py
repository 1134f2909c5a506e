"""Process-wide settings of a computing process (a Dask worker, the serial engine).

:func:`keep_heap`: glibc's malloc serves large blocks from its heap and keeps freed memory, so a
network's large activations are not mapped and unmapped (and page-faulted in again) at every
layer. Applied once per process by the NIC codecs and the classifier when they load a model.
"""

from __future__ import annotations

import sys
from functools import lru_cache

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
KEEP_HEAP_BYTES = 1 << 30


@lru_cache(maxsize=1)
def keep_heap() -> bool:
    """Make glibc's malloc serve large blocks from its heap and keep up to 1 GiB of freed memory
    (once per process; True when applied, False off glibc). By default every activation above
    its mmap threshold (NIC's 256x256x192 floats are 50 MB) is mapped and unmapped per layer,
    so each forward pass page-faults its memory in anew. Measured on this project's 2-core Xeon:
    EfficientNet-Lite0 plus NIC on 16 images twice, 5.7-6.1 CPU-s without (1.5 of them in the
    kernel, ~600,000 page faults), 3.6-3.7 with; a NIC evaluation of 3 Kodak images with real
    entropy coding, 3.2-3.7 CPU-s without (0.9-1.1 in the kernel), 2.6 with (0.05)."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, KEEP_HEAP_BYTES)
        )
    except (OSError, AttributeError):
        return False
