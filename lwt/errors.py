"""The one exception type a user should ever see from lwt.

Anything raised as ``LwtError`` is a problem with the user's input (config, data, paths); the CLI
prints its message on one line and exits with status 2, without a traceback. Everything else is a bug
and keeps its traceback.
"""


class LwtError(Exception):
    """A user-facing error whose message says what is wrong and what is valid."""


class RunLocked(LwtError):
    """The run folder is locked by another live process (``pid``): a sweep skips such a run."""

    def __init__(self, message: str, pid: str):
        super().__init__(message)
        self.pid = pid


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (raised by lwt's handler, lwt.cli). A BaseException, and no
    KeyboardInterrupt, so Lightning's fit re-raises it instead of turning it into ``sys.exit(1)``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.where, self.run_dir = signum, None, None


SIGNALS = {"defer": 0, "pending": None}  # see lwt.training.state.signals_deferred


def on_signal(signum, frame) -> None:
    """lwt's SIGINT/SIGTERM handler (installed by lwt.cli): raise Interrupted now, or, inside a Trainer, at the
    next batch end, so that it never lands inside a write (a checkpoint, a metrics.jsonl line)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the clean exit
    if SIGNALS["defer"]:
        SIGNALS["pending"] = signum
        return
    raise Interrupted(signum)


def raise_pending() -> None:
    signum, SIGNALS["pending"] = SIGNALS["pending"], None
    if signum is not None:
        raise Interrupted(signum)
