"""The one exception type a user should ever see from lwt.

Anything raised as ``LwtError`` is a problem with the user's input (config, data, paths); the CLI
prints its message on one line and exits with status 2, without a traceback. Everything else is a bug
and keeps its traceback.
"""


class LwtError(Exception):
    """A user-facing error whose message says what is wrong and what is valid."""
