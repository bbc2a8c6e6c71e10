"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

``timeout``, ``kill``, ``docker stop``, systemd and batch schedulers send SIGTERM; a closed
terminal sends SIGHUP. Python's default for both is to die on the spot: a running trial
stays RUNNING, MLflow runs stay open, and a server the command started keeps its port.
Inside ``stop_signals_as_interrupt`` they raise ``Terminated``, a ``KeyboardInterrupt``,
so every ``except KeyboardInterrupt`` / ``finally`` on the way out runs as for Ctrl-C
(the trial is marked FAIL with ``interrupted``, its run KILLED, servers stopped).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from autolambda.base.processes import group_alive

if TYPE_CHECKING:
    import subprocess

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop signal other than SIGINT, raised where the main thread was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for signal N."""
    return exc.exit_code if isinstance(exc, Terminated) else 130


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """For the block (main thread only): SIGTERM/SIGHUP raise ``Terminated``, SIGINT a
    plain ``KeyboardInterrupt``; once one has arrived, further stop signals are ignored
    until the block is left, so the clean-up on the way out finishes (SIGKILL still
    ends it). A signal the process was started to ignore (``nohup``, a background job's
    SIGINT) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

    previous = {}
    for s in STOP_SIGNALS:
        old = signal.getsignal(s)
        if old is not signal.SIG_IGN:
            previous[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, signal.SIG_DFL if old is None else old)


def stop_process_group(proc: "subprocess.Popen", timeout: float = 20.0) -> None:
    """End ``proc`` and every process of its group (it must have been started with
    ``start_new_session=True``): SIGTERM, then SIGKILL for whatever is left after
    ``timeout`` seconds. ``mlflow server`` forks uvicorn, a job runner and huey consumers;
    ending only the first leaves the others holding the port."""
    import os
    import time

    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not group_alive(pgid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Hold stop signals back for the block (they arrive when it ends): a write that must
    not be left half done, such as a trial's MLflow run (created, then its params, metrics
    and status), cannot be cut in the middle by Ctrl-C or SIGTERM."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
