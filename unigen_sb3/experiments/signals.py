"""SIGTERM and SIGHUP handled like Ctrl-C (SIGINT).

A cluster scheduler stops a job with SIGTERM, a closed terminal sends SIGHUP; by default
either kills Python on the spot, so a run would lose everything since its last checkpoint.
:func:`install` makes both raise :class:`Terminated`, a ``KeyboardInterrupt``, in the main
thread, so the code that saves the model and a checkpoint on Ctrl-C runs for them too;
:func:`exit_code` then gives ``128 + signal number`` (130 for Ctrl-C, 143 for SIGTERM, 129
for SIGHUP), as a shell reports a process the signal killed.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["HANDLED_SIGNALS", "Terminated", "exit_code", "install", "received"]

#: Signals that stop a run the way Ctrl-C does.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by a handled signal.

    :param signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _received:
        return  # the first signal stops the run; let the save that follows finish
    _received.append(signum)
    raise Terminated(signum)


def install() -> None:
    """Handle :data:`HANDLED_SIGNALS` like SIGINT in this process (call from the main thread)."""
    _received.clear()
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _handler)


def received() -> int | None:
    """:return: the first handled signal received since :func:`install`, or None."""
    return _received[0] if _received else None


def exit_code() -> int:
    """:return: ``128 + signum`` of the signal received (130, SIGINT's, when none was)."""
    return 128 + (_received[0] if _received else int(signal.SIGINT))
