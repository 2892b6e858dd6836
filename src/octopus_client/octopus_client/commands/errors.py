"""The CLI's one error type and exit codes (no ROS import: ``cli.main`` catches it)."""

from __future__ import annotations

EXIT_FAILED = 1  # a job failed, a command was refused
EXIT_INVALID = 2  # a rejected script, an unknown job, bad input (argparse uses 2 too)
EXIT_UNAVAILABLE = 3  # nothing answered, a missing optional package
EXIT_INTERRUPTED = 130  # Ctrl-C


class ClientError(RuntimeError):
    """A request that could not be done; ``str()`` is the one line the CLI prints."""

    def __init__(self, message: str, exit_code: int = EXIT_UNAVAILABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
