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
