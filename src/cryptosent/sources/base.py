"""The source contract: a source yields records (`Tweet`s, or `PriceTick`s for the price
sources) and knows nothing of Kafka.

`ingest` turns any source into Kafka messages (one place, `ingest.to_message`); the sources
themselves only read their feed (a generator, a file, an HTTP stream, a websocket) and map it to
the message contracts of `cryptosent.model`. `Source` alone means a source of tweets;
`Source[PriceTick]` is a price source. Which posts a live source keeps ("is this about
crypto?") is passed in by the caller as a function of the text, so sources never import the
analysis.

Adding a source: a module with a class implementing `Source` (usually `IteratorSource` over a
generator of tweets), and a command in `cli/ingest.py` that builds it and calls `ingest.run`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Generic

from typing_extensions import TypeVar

from cryptosent.model import Tweet
from cryptosent.runtime import StopSignal

log = logging.getLogger(__name__)

_POLL_S = 0.05
"""How often a read waiting for the feed looks at the stop."""

R = TypeVar("R", default=Tweet)
"""What a source yields: tweets unless said otherwise."""

TextFilter = Callable[[str], bool]
"""Whether a post's text is wanted (e.g. mentions a coin of the catalogue)."""


class Source(ABC, Generic[R]):
    """Yields records (tweets by default) in batches of what is ready."""

    name: str
    """What the source is called in progress lines ('mock', 'replay', 'x', 'bluesky')."""

    @abstractmethod
    def read(self, n: int) -> list[R]:
        """Up to n records that are ready, waiting for the first one if none is; an empty list
        once the source is exhausted. Asked for exactly what is due, a source makes records when
        they are sent (their timestamps stay honest at low rates)."""

    def close(self) -> None:  # optional: most sources hold nothing to release
        """Release connections and files."""


class IteratorSource(Source[R]):
    """A source over an iterable of records (a file, a paced stream, a live feed).

    ``max_batch=1`` suits paced or live iterables whose next item may take a while: each record
    is then sent as soon as it exists instead of waiting for a full batch."""

    def __init__(
        self,
        name: str,
        tweets: Iterable[R],
        *,
        max_batch: int | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._tweets: Iterator[R] = iter(tweets)
        self._max_batch = max_batch
        self._on_close = on_close

    def read(self, n: int) -> list[R]:
        """The next records of the iterable (at most max_batch)."""
        if self._max_batch is not None:
            n = min(n, self._max_batch)
        return list(itertools.islice(self._tweets, n))

    def close(self) -> None:
        """Close the underlying generator and call on_close."""
        close = getattr(self._tweets, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            self._on_close()


class StreamSource(Source[Tweet]):
    """A live feed read one tweet at a time.

    `iter_tweets` blocks (connecting, backing off, waiting for the next post); it runs on a
    feed thread, so `read` waits on the stop instead and returns ``[]`` as soon as Ctrl-C,
    SIGTERM or the end of ``--duration`` comes, whatever the feed is doing. `iter_tweets` waits
    its own delays with ``self.stop.wait`` (a child of the command's stop, also set by `close`);
    `interrupt` unblocks a read in progress (closes the socket); a connection attempt that
    cannot be interrupted is left to finish on its daemon thread.
    """

    QUEUE_SIZE = 1000
    """Posts read ahead of the producer; the feed thread waits when the queue is full."""
    CLOSE_WAIT_S = 0.25
    """How long `close` waits for the feed thread to end before leaving it behind."""

    problem: str | None = None
    """Why the feed delivers nothing now (the last connection failure); None while it works."""

    def __init__(self, stop: StopSignal | None = None) -> None:
        self.stop = stop.child() if stop is not None else StopSignal()
        self._queue: queue.Queue[Tweet] = queue.Queue(maxsize=self.QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()
        self._error: BaseException | None = None

    @abstractmethod
    def iter_tweets(self) -> Iterator[Tweet]:
        """Tweets until ``self.stop`` is set (blocking), reconnecting by itself."""

    def interrupt(self) -> None:  # optional: a feed without a socket to close
        """Unblock the feed thread's read in progress (called from another thread)."""

    def read(self, n: int) -> list[Tweet]:
        """The next tweet as soon as it exists (live tweets are sent one by one); ``[]`` once
        stopped or when the feed ended; the feed's fatal error is raised here."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._pump, name=f"{self.name}-feed", daemon=True
            )
            self._thread.start()
        while True:
            try:
                return [self._queue.get(timeout=_POLL_S)]
            except queue.Empty:
                if self._ended.is_set() and self._queue.empty():
                    if self._error is not None:
                        raise self._error from None
                    return []
                if self.stop.is_set:
                    return []

    def _pump(self) -> None:
        stream = self.iter_tweets()
        try:
            for tweet in stream:
                while not self.stop.is_set:
                    try:
                        self._queue.put(tweet, timeout=_POLL_S)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set:
                    break
        except BaseException as err:  # handed to read() in the caller's thread
            self._error = err
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # a generator's cleanup runs here (cursors are saved)
            self._ended.set()

    def close(self) -> None:
        """Stop the feed: the feed thread ends (its cleanup runs: cursors are saved), or is left
        behind after CLOSE_WAIT_S if a connection attempt still blocks it."""
        self.stop.set("closed")
        if self._thread is None:
            return
        self.interrupt()
        self._thread.join(self.CLOSE_WAIT_S)
        if self._thread.is_alive():
            log.info("%s: the feed thread is still connecting; left to end by itself", self.name)
