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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Generic

from typing_extensions import TypeVar

from cryptosent.model import Tweet

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
    """A live feed read one tweet at a time (`iter_tweets` blocks until the next one)."""

    _stream: Iterator[Tweet] | None = None

    @abstractmethod
    def iter_tweets(self) -> Iterator[Tweet]:
        """Tweets forever (blocking), reconnecting by itself; stop by closing the source."""

    def read(self, n: int) -> list[Tweet]:
        """The next tweet as soon as it exists (live tweets are sent one by one)."""
        if self._stream is None:
            self._stream = self.iter_tweets()
        return list(itertools.islice(self._stream, min(n, 1)))

    def close(self) -> None:
        """Stop the feed (its generator's cleanup runs: cursors are saved)."""
        if self._stream is not None:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
            self._stream = None
