"""GPU slots shared by every process on a host: one lock file per GPU, locked with ``flock``.

A launched run inherits the locked file descriptor, so the slot is held exactly as long as the run's process
lives: released on success, failure, or a crash or kill (the kernel drops the lock with the last descriptor),
with no bookkeeping that a dead process could leave stale."""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Slot:
    gpu: str
    fd: int

    def close(self) -> None:
        """The caller's copy of the lock (the run's process keeps its own)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class GpuSlots:
    def __init__(self, directory: Path, gpus: list[str]):
        self.directory = Path(directory)
        self.gpus = list(gpus)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _lock_path(self, gpu: str) -> Path:
        return self.directory / f"gpu-{gpu}.lock"

    def try_acquire(self) -> Slot | None:
        for gpu in self.gpus:
            fd = os.open(self._lock_path(gpu), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.set_inheritable(fd, True)
            return Slot(gpu, fd)
        return None

    def acquire(self, wait_s: float, poll_s: float = 0.5) -> Slot | None:
        """A free slot, waiting up to ``wait_s`` for one (runs queue while every GPU is busy)."""
        deadline = time.monotonic() + wait_s
        while True:
            slot = self.try_acquire()
            if slot or time.monotonic() >= deadline:
                return slot
            time.sleep(poll_s)

    def busy(self) -> list[str]:
        out = []
        for gpu in self.gpus:
            fd = os.open(self._lock_path(gpu), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                out.append(gpu)
            finally:
                os.close(fd)
        return out
