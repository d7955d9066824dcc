"""Keep freed host memory in the process instead of returning it to the OS.

glibc's malloc hands large freed blocks back to the OS (blocks above its mmap threshold,
and the heap's top above its trim threshold), so the next allocation of that size
page-faults its memory in again, zeroed. Two places allocate such blocks over and over:
* a training minibatch allocates and frees tens of large CPU tensors (the 2,048-frame
  activations are 15–100 MB each): kept, a minibatch update ran 1.5× faster in fp32 and
  1.3× in bf16 on the 2-core dev CPU (``make bench-train``);
* every environment step hands out freshly allocated frames (the frames handed out are
  never overwritten; at 64 environments the torch renderer's key canvas is 2.2 MB, the CPU
  kernel's frames 0.8 MB): with the last frames still held, as every consumer holds them,
  a Starpilot step with the torch renderer often took about 340 page faults and ran at half
  speed (``make bench-envs``; whether it faults depends on the heap's history).
With a large trim threshold and top pad the heap keeps what it grew to and reuses it.

It is a process-wide setting, so the programs make it, not the library: the ``crl-merge``
command, the Ray job workers and ``make bench-envs``/``bench-train``. A script of your own
that steps a CPU environment or trains should call :func:`keep_freed_memory` first. The
cost is that a process's resident memory stays at its peak. Where malloc is not glibc's it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
SETTINGS = {M_TRIM_THRESHOLD: (1 << 31) - 1,  # never give the heap's top back
            M_TOP_PAD: 1 << 30,               # grow the heap 1 GiB at a time
            M_MMAP_THRESHOLD: 32 << 20}       # blocks up to 32 MiB (glibc's maximum) from the heap


@functools.cache  # once per process: the settings stay, and finding libc runs a subprocess
def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` with glibc's ``mallopt``; True if malloc took them all."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    return mallopt is not None and all(mallopt(option, value) == 1 for option, value in SETTINGS.items())
