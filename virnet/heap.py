"""Keep freed memory for reuse while many tiles or images go through a network on the CPU.

glibc's malloc serves every block above 32 MiB (and, at first, above 128 KiB) with a fresh
mmap and returns it with munmap on free, so each tile's activations are faulted in and
zeroed page by page again: a 12-megapixel restore spent more system than user time in page
faults. Inside `reuse_freed_memory()` malloc takes blocks from its heap only (M_MMAP_MAX = 0)
and keeps freed memory there (a huge M_TRIM_THRESHOLD), so the next tile reuses the pages of
the previous one (`tiled_apply` holds it over an image's tiles, `virnet restore` over a
folder's images); on exit the defaults come back and `malloc_trim` returns the free heap to
the system. The settings are process-wide while the context is open. Elsewhere than glibc
(macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator

# mallopt parameters and glibc's defaults for them (malloc/malloc.c).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
KEEP_EVERYTHING = 2**31 - 1  # the largest threshold mallopt takes (an int)

_lock = threading.Lock()
_depth = 0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not all(hasattr(libc, f) for f in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    return libc


def available() -> bool:
    """Whether the settings can be changed here (glibc)."""
    return _glibc() is not None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Serve and keep allocations on malloc's heap for the duration (re-entrant, thread-safe)."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_EVERYTHING)
            libc.mallopt(M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
