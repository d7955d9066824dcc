"""The run store: one folder per run, every artifact written atomically and recorded in the
run's ``manifest.json``; what is recorded is finished, what is not is redone.

    store = RunStore("runs")
    run = store.run("starpilot", "quick", "train", "dodge", "s00", spec={...})
    if not run.has("actor"):
        run.save_model("actor", actor, steps=...)

An artifact is recorded only after its files are complete on disk, so a crash at any point
leaves either a recorded, complete artifact or none. A run folder remembers the ``spec``
it was made for; opening it with a different spec is an error that names the keys that
differ, so changed settings never silently reuse stale results.

Several processes may work on one store (two ``crl-merge run`` at once, or workers on a
shared filesystem): whoever writes into a run holds its *claim* (:meth:`Run.try_claim`),
an exclusive ``flock`` on the run's ``claim.lock`` that names its owner. The operating
system drops the lock when its holder exits or dies, so a crashed worker's claim clears
itself; the manifest is re-read when a claim is taken, so work finished by another
process meanwhile is seen and not redone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path

import torch
from torch import nn

from crl_merge.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint, save_model
from crl_merge.files import atomic_write_bytes, atomic_write_json

MANIFEST = "manifest.json"
CLAIM = "claim.lock"
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")


class StoreError(Exception):
    """A run folder that cannot be used as asked."""


def spec_differences(old: dict, new: dict, prefix: str = "", was: str = "in the store", now: str = "now") -> list[str]:
    """Keys (dotted) whose values differ between two nested specs, each as
    ``key: <old> <was>, <new> <now>``."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += spec_differences(a, b, f"{prefix}{key}.", was, now)
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} {was}, {b!r} {now}")
    return diffs


class Claim:
    """This process's exclusive hold on a run folder (see the module docstring); a context
    manager that releases it."""

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # no owner any more; the file itself stays (see try_claim)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def owner() -> str:
    """Who holds a claim, as its lock file says it: host, process id, start time."""
    return f"{socket.gethostname()}:{os.getpid()}"



class RunGroup:
    """Several runs worked on as one job (trained together, say): ``try_claim`` takes all their
    claims or none, so :func:`crl_merge.procgen.protocol.in_turn` schedules a group as it
    schedules one run."""

    def __init__(self, runs: list["Run"]):
        self.runs = runs

    def try_claim(self) -> contextlib.ExitStack | None:
        held = contextlib.ExitStack()
        for run in self.runs:
            claim = run.try_claim()
            if claim is None:
                held.close()  # release the ones taken: another process works on part of the group
                return None
            held.enter_context(claim)
        return held


class Run:
    """One run's folder and manifest."""

    def __init__(self, path: Path, spec: dict):
        self.path = path
        self.spec = json.loads(json.dumps(spec))  # as it will read back from JSON
        if (path / MANIFEST).is_file():
            self._read_manifest()
            diffs = spec_differences(self.manifest.get("spec", {}), self.spec)
            if diffs:
                raise StoreError(f"{path} was made for other settings ({'; '.join(diffs)}); "
                                 "delete the folder or use another store (--store)")
        else:
            self.manifest = {"spec": self.spec, "artifacts": {}, "created": time.time()}
            _writable(path)
            self._write_manifest()

    def _read_manifest(self) -> None:
        manifest_path = self.path / MANIFEST
        try:
            self.manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise StoreError(f"{manifest_path}: unreadable manifest ({e})") from e

    def try_claim(self) -> Claim | None:
        """The run's claim for this process, or None while another process holds it. The lock
        file is never deleted (deleting a locked file lets a third process lock a new file of
        the same name while the old lock is still held)."""
        _writable(self.path)
        fd = os.open(self.path / CLAIM, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{owner()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        if (self.path / MANIFEST).is_file():
            self._read_manifest()  # another process may have finished work in it meanwhile
        return Claim(fd, self.path / CLAIM)

    def claim_holder(self) -> str:
        """Who holds the claim now (empty when no one does)."""
        try:
            return (self.path / CLAIM).read_text().strip()
        except FileNotFoundError:
            return ""

    @property
    def name(self) -> str:
        return self.path.name

    def _write_manifest(self) -> None:
        atomic_write_json(self.path / MANIFEST, self.manifest)

    def record(self, artifact: str, files: list[str], **info) -> None:
        """Mark ``artifact`` finished, made of ``files`` (relative to the run folder)."""
        missing = [f for f in files if not (self.path / f).is_file()]
        if missing:
            raise StoreError(f"{self.path}: cannot record {artifact!r}, files missing: {missing}")
        self.manifest["artifacts"][artifact] = {"files": files, "recorded": time.time(), **info}
        self._write_manifest()

    def forget(self, artifact: str) -> None:
        if self.manifest["artifacts"].pop(artifact, None) is not None:
            self._write_manifest()

    def has(self, artifact: str) -> bool:
        entry = self.manifest["artifacts"].get(artifact)
        return entry is not None and all((self.path / f).is_file() for f in entry["files"])

    def info(self, artifact: str) -> dict:
        if not self.has(artifact):
            raise StoreError(f"{self.path}: no finished artifact {artifact!r}; it has {sorted(self.manifest['artifacts'])}")
        return self.manifest["artifacts"][artifact]

    # -- typed artifacts ----------------------------------------------------------------
    def save_model(self, artifact: str, model: nn.Module, **meta) -> None:
        save_model(self.path / artifact, model, **meta)
        self.record(artifact, [f"{artifact}.safetensors", f"{artifact}.json"])

    def load_model(self, artifact: str, device="cpu") -> tuple[nn.Module, dict]:
        self.info(artifact)
        return load_model(self.path / artifact, device)

    def save_tensors(self, artifact: str, tensors: dict[str, torch.Tensor], meta: dict, **info) -> None:
        """Named tensors with a JSON ``meta`` sidecar; ``info`` is kept in the manifest entry."""
        save_checkpoint(self.path / artifact, tensors, meta)
        self.record(artifact, [f"{artifact}.safetensors", f"{artifact}.json"], **info)

    def load_tensors(self, artifact: str, device="cpu") -> tuple[dict[str, torch.Tensor], dict]:
        self.info(artifact)
        return load_checkpoint(self.path / artifact, device)

    def save_file(self, artifact: str, filename: str, data: str | bytes) -> None:
        """A single file of any format (a CSV, a PNG) as ``artifact``."""
        atomic_write_bytes(self.path / filename, data.encode() if isinstance(data, str) else data)
        self.record(artifact, [filename])

    def save_json(self, artifact: str, obj) -> None:
        atomic_write_json(self.path / f"{artifact}.json", obj)
        self.record(artifact, [f"{artifact}.json"])

    def load_json(self, artifact: str):
        self.info(artifact)
        path = self.path / f"{artifact}.json"
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise StoreError(f"{path}: unreadable ({e})") from e


def _writable(folder: Path) -> None:
    """Make ``folder``, or say in one line why the store cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{folder}: the run store needs a folder here, and a file is in the way (--store)") from None
    except OSError as e:
        raise StoreError(f"{folder}: cannot write the run store ({e.strerror}); give a writable --store") from None
    if not os.access(folder, os.W_OK):
        raise StoreError(f"{folder}: the run store is read-only here; give a writable --store")


class RunStore:
    """A folder of runs, addressed by name parts (suite, preset, kind, task, seeds, …)."""

    def __init__(self, root: str | Path = "runs"):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--store {self.root} is a file; the run store is a folder")

    def path(self, *parts: str) -> Path:
        for part in parts:
            if not _NAME_PART.match(str(part)):
                raise StoreError(f"run name part {part!r} must be letters, digits and . _ = + - "
                                 "(and not start with a symbol)")
        return self.root.joinpath(*map(str, parts))

    def run(self, *parts: str, spec: dict) -> Run:
        return Run(self.path(*parts), spec)

    def existing(self, *parts: str) -> Run | None:
        """The run at ``parts`` with the spec it was made for, or None if there is none."""
        path = self.path(*parts)
        if not (path / MANIFEST).is_file():
            return None
        return Run(path, json.loads((path / MANIFEST).read_text())["spec"])


__all__ = ["RunStore", "Run", "Claim", "StoreError", "CheckpointError", "spec_differences"]
