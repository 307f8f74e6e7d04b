"""The error kinds. Every error cryptosent raises on purpose derives from `CryptosentError` and
says by its kind what the caller should do with it:

- `TransientError`: a server is down or unreachable. Long-running loops (the processor, the
  live sources) wait with backoff and try again (`runtime.Retry`); a one-shot command prints it.
- `FatalError`: retrying cannot help (a wrong setting, a missing topic or bucket, refused
  credentials, an unreadable file). The command prints it as one line and exits non-zero.
- Errors deriving from `CryptosentError` directly are outcomes handled where they are raised:
  `model.InvalidTweet` and `model.InvalidPrice` (the message is dead-lettered),
  `sinks.offsets.StaleBatch` (the processor reloads the stored offsets), an exchange feed's
  `Reconnect` notice.

``str(err)`` is always one line: what failed, where, and what to do about it. Retry decisions
read the kind (``except TransientError``), never a list of concrete classes.
"""

from __future__ import annotations


class CryptosentError(Exception):
    """Root of the errors cryptosent raises on purpose; ``str(err)`` is one line."""


class TransientError(CryptosentError):
    """A server is unavailable for now: retry with backoff.

    ``service`` names the server for logs ("PostgreSQL", "the lake", "Kafka") and ``reason`` is
    the short cause, so a retry loop can log ``<service> unavailable (<reason>)`` while ``str()``
    stays the full line a user sees.
    """

    def __init__(self, message: str, *, service: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.reason = _first_line(reason if reason is not None else message, type(self).__name__)


class FatalError(CryptosentError):
    """Retrying cannot help; a user must change something. The command exits non-zero."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type name when it has none)."""
    return _first_line(str(exc), type(exc).__name__)


def _first_line(text: str, default: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else default
