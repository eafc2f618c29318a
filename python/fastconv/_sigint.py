"""Ctrl-C during training: finish the step, then stop, instead of dying halfway through an update."""
from __future__ import annotations

import signal


class StopOnInterrupt:
    """While active, the first SIGINT only sets `requested` (the loop checks it after each step);
    a second one raises KeyboardInterrupt as usual, for a user who will not wait.

    The handler prints nothing: a print from a signal handler can land inside another write to the
    same stream and fail as a reentrant call. Where Python cannot install handlers (not the main
    thread) or SIGINT is ignored (a background job), Ctrl-C keeps its usual behaviour."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
                self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
