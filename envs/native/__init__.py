"""C kernels for the CPU, built on first use with the system's C compiler and loaded with ctypes.

At the batch sizes RL uses on a CPU, a torch program costs what its number of operations
costs (a few microseconds each), however little data they touch. Where one job needs a hundred
small operations per step, a C loop does it in one call. Each kernel here has a torch
reference in the module that uses it, and the tests check that both give the same results.

A kernel is compiled once per source, compiler and CPU into ``$CRL_MERGE_CACHE/native``
(default ``~/.cache/crl-merge/native``, about a second with gcc) and loaded from there
afterwards; concurrent first uses (parallel jobs, Ray workers) each build into a private file
and move it into place. Without a working
compiler, or with ``CRL_MERGE_NATIVE=0``, :func:`load` returns ``None`` (with one warning
saying why, where a compiler failed) and the callers use their torch path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
import warnings
from pathlib import Path

SOURCES = Path(__file__).parent
# No fused multiply-add: every float operation must round as torch's separate operations do.
FLAGS = ["-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math"]
# Tuned for this CPU where the compiler can (a third faster than the generic build on the dev
# CPU); the library's name then includes the CPU's identity, so a cache shared by machines
# of different CPUs keeps one build per CPU.
NATIVE_FLAGS = ["-march=native"]


def enabled() -> bool:
    """False where ``CRL_MERGE_NATIVE=0`` asks for the torch paths only."""
    return os.environ.get("CRL_MERGE_NATIVE", "1") != "0"


def cache_dir() -> Path:
    return Path(os.environ.get("CRL_MERGE_CACHE") or Path.home() / ".cache" / "crl-merge") / "native"


def compiler() -> str | None:
    """The C compiler: ``$CC``, Python's own, or ``cc``/``gcc``/``clang`` on the PATH."""
    for candidate in (os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split(" ")[0], "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def cpu_identity() -> str:
    """The CPU's model and feature flags (Linux), or what the platform module says."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "".join(sorted({line for line in lines if line.startswith(("model name", "flags", "Features"))}))
    except OSError:
        return platform.machine() + platform.processor()


def build(name: str, cc: str) -> Path | None:
    """``<name>.c`` built into the cache (tuned for this CPU, or generic where the compiler
    cannot tune); None, with a warning, where both builds fail."""
    source = SOURCES / f"{name}.c"
    errors = []
    for flags, machine in ((FLAGS + NATIVE_FLAGS, cpu_identity()), (FLAGS, "")):
        digest = hashlib.sha256(b"\0".join([source.read_bytes(), " ".join([cc, *flags]).encode(),
                                             machine.encode()])).hexdigest()[:16]
        library = cache_dir() / f"{name}-{digest}.so"
        if library.exists():
            return library
        try:
            library.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(suffix=".so", dir=library.parent)
        except OSError as error:
            warnings.warn(f"cannot write the {name} kernel into {library.parent} ({error}); set CRL_MERGE_CACHE "
                          "to a writable folder. Falling back to torch (slower on the CPU)", stacklevel=3)
            return None
        os.close(fd)
        built = subprocess.run([cc, *flags, "-o", partial, str(source), "-lm"], capture_output=True, text=True)
        if built.returncode == 0:
            os.replace(partial, library)
            return library
        os.unlink(partial)
        errors.append(f"{cc} {' '.join(flags)}: {built.stderr.strip()}")
    warnings.warn(f"building the {name} kernel failed, falling back to torch (slower on the CPU):\n"
                  + "\n".join(errors), stacklevel=3)
    return None


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """The kernel library built from ``envs/native/<name>.c``, or ``None`` (see the module doc)."""
    if not enabled():
        return None
    cc = compiler()
    if cc is None:
        warnings.warn(f"no C compiler found ($CC, cc, gcc, clang): the {name} kernel falls back to torch "
                      "(slower on the CPU)", stacklevel=2)
        return None
    library = build(name, cc)
    return None if library is None else ctypes.CDLL(str(library))
