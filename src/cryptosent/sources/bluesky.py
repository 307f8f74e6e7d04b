"""Bluesky posts about crypto, from a Jetstream websocket (JSON view of the AT Protocol firehose).

We subscribe to ``app.bsky.feed.post`` commits only, keep the ``create`` operations whose text
the caller's filter accepts (the CLI passes ``relevance.crypto_filter()``: a coin of the
catalogue or a generic crypto word), and remember the last event's ``time_us``. On a
disconnect we reconnect with backoff and ask Jetstream to replay from a few seconds before
that cursor, dropping the duplicates this causes; with ``cursor_path`` the cursor also
survives a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from cryptosent.errors import FatalError
from cryptosent.model import Author, Tweet
from cryptosent.runtime import Backoff, StopSignal
from cryptosent.sources.base import StreamSource, TextFilter

log = logging.getLogger(__name__)

SOURCE_NAME: Final = "bluesky"
DEFAULT_URL: Final = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION: Final = "app.bsky.feed.post"
REWIND_US: Final = 5_000_000
"""How far before the last seen event a resumed connection starts (Jetstream's advice: a few s)."""
STALL_TIMEOUT_S: Final = 60.0
"""The post firehose never goes quiet for a minute; silence that long means a dead connection."""
MAX_MESSAGE_BYTES: Final = 2**21
# Statuses that retrying cannot fix: a wrong URL or rejected parameters.
_FATAL_STATUSES: Final = frozenset({400, 401, 403, 404, 410})


class JetstreamError(FatalError):
    """A fatal problem (bad URL, rejected request); ``str()`` is one line."""


@dataclass
class JetstreamStats:
    """Counters of one ``JetstreamSource`` (cumulative over reconnects)."""

    received: int = 0
    """Tweets yielded."""
    events: int = 0
    skipped_malformed: int = 0
    skipped_other: int = 0
    """Well-formed events that are not new posts: identity, account, deletes, updates."""
    filtered_out: int = 0
    """New posts the filter refused (not about crypto)."""
    duplicates: int = 0
    reconnects: int = 0


# --- Jetstream wire format (fields we use; msgspec ignores the rest) -----------------------------


class _StrongRef(msgspec.Struct):
    uri: str


class _ReplyRef(msgspec.Struct):
    parent: _StrongRef | None = None


class _PostRecord(msgspec.Struct, rename={"created_at": "createdAt"}):
    text: str
    created_at: str | None = None
    langs: list[str] | None = None
    reply: _ReplyRef | None = None


class _Commit(msgspec.Struct):
    operation: str
    collection: str
    rkey: str
    # Kept raw so that a malformed record still lets the event advance the cursor.
    record: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Event(msgspec.Struct):
    did: str
    time_us: int
    kind: str
    commit: _Commit | None = None


_event_decoder: Final = msgspec.json.Decoder(_Event)
_record_decoder: Final = msgspec.json.Decoder(_PostRecord)


def post_uri(did: str, rkey: str) -> str:
    """The at-uri of a post, the id Bluesky itself uses (and what replies point to)."""
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


def _created_at(raw: str | None, time_us: int) -> datetime:
    if raw:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    # createdAt is whatever the posting client wrote; the relay's clock is the fallback.
    return datetime.fromtimestamp(time_us / 1_000_000, UTC)


def _default_connect(url: str) -> ClientConnection:
    return connect(url, open_timeout=10, close_timeout=2, max_size=MAX_MESSAGE_BYTES)


class JetstreamSource(StreamSource):
    """Yield wanted posts from a Bluesky Jetstream, reconnecting and resuming from a cursor."""

    name = SOURCE_NAME

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        accept: TextFilter,
        cursor_path: Path | None = None,
        rewind_us: int = REWIND_US,
        dedup_window: int = 10_000,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        cursor_save_interval_s: float = 5.0,
        connect: Callable[[str], ClientConnection] = _default_connect,
        stop: StopSignal | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``accept`` says which post texts to keep; ``cursor_path`` persists the cursor (unix
        microseconds) so a restart resumes where the last run stopped; ``stop`` (the command's:
        Ctrl-C, SIGTERM, ``--duration``) ends every wait; ``sleep`` replaces the reconnect waits
        (tests)."""
        super().__init__(stop)
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise JetstreamError(f"Jetstream URL must start with ws:// or wss://, got {url!r}")
        self.url = url
        self._accept = accept
        self.cursor_path = cursor_path
        self._rewind_us = rewind_us
        self._dedup_window = dedup_window
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stall_timeout_s = stall_timeout_s
        self._save_interval_s = cursor_save_interval_s
        self._connect = connect
        self._sleep = sleep
        self._clock = clock
        self._backoff = Backoff.exponential(initial=1.0, maximum=60.0)
        self.stats = JetstreamStats()
        self.cursor: int | None = self._load_cursor()
        self._saved_cursor = self.cursor
        self._last_save = clock()
        self._cursor_lock = threading.Lock()
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:
        return f"JetstreamSource(url={self.url!r}, cursor={self.cursor})"

    # -- cursor --

    def _load_cursor(self) -> int | None:
        if self.cursor_path is None or not self.cursor_path.exists():
            return None
        text = self.cursor_path.read_text(encoding="utf-8").strip()
        try:
            return int(text)
        except ValueError:
            log.warning("bluesky: ignoring unreadable cursor file %s (%r)", self.cursor_path, text)
            return None

    def save_cursor(self) -> None:
        """Write the cursor to ``cursor_path`` (atomically) if it moved since the last save."""
        with self._cursor_lock:  # the feed thread and close() may both save
            self._last_save = self._clock()
            cursor = self.cursor
            if self.cursor_path is None or cursor is None or cursor == self._saved_cursor:
                return
            tmp = self.cursor_path.with_name(self.cursor_path.name + ".tmp")
            tmp.write_text(f"{cursor}\n", encoding="utf-8")
            os.replace(tmp, self.cursor_path)
            self._saved_cursor = cursor

    def subscribe_url(self) -> str:
        """The URL to connect to now: posts only, resuming a few seconds before the cursor."""
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("cursor",)]
        if not any(k == "wantedCollections" for k, _ in query):
            query.append(("wantedCollections", POST_COLLECTION))
        if self.cursor is not None:
            query.append(("cursor", str(max(0, self.cursor - self._rewind_us))))
        return urlunsplit(parts._replace(query=urlencode(query)))

    # -- events --

    def parse_event(self, message: str | bytes) -> Tweet | None:
        """Turn one Jetstream message into a Tweet, or ``None`` (counted) if it is not one."""
        self.stats.events += 1
        try:
            event = _event_decoder.decode(message)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.stats.skipped_malformed += 1
            return None
        if self.cursor is None or event.time_us > self.cursor:
            self.cursor = event.time_us
        commit = event.commit
        if event.kind != "commit" or commit is None:
            self.stats.skipped_other += 1
            return None
        if commit.operation != "create" or commit.collection != POST_COLLECTION:
            self.stats.skipped_other += 1
            return None
        if not commit.record:
            self.stats.skipped_malformed += 1
            return None
        try:
            record = _record_decoder.decode(commit.record)
        except msgspec.DecodeError:
            self.stats.skipped_malformed += 1
            return None
        if not self._accept(record.text):
            self.stats.filtered_out += 1
            return None
        return Tweet(
            id=post_uri(event.did, commit.rkey),
            text=record.text,
            created_at=_created_at(record.created_at, event.time_us),
            author=Author(id=event.did),
            lang=record.langs[0] if record.langs else None,
            source=SOURCE_NAME,
            reply_to=record.reply.parent.uri if record.reply and record.reply.parent else None,
        )

    def _first_time(self, tweet_id: str) -> bool:
        if tweet_id in self._seen:
            self._seen.move_to_end(tweet_id)
            return False
        self._seen[tweet_id] = None
        if len(self._seen) > self._dedup_window:
            self._seen.popitem(last=False)
        return True

    # -- connection loop --

    def iter_tweets(self) -> Iterator[Tweet]:
        """Yield crypto posts until stopped (blocking), reconnecting with backoff."""
        try:
            while not self.stop.is_set:
                url = self.subscribe_url()
                connected = False
                self.problem = self.problem or f"no answer from Jetstream at {self.url}"
                try:
                    with self._connect(url) as ws:
                        self._ws, connected, self.problem = ws, True, None
                        log.info("bluesky: connected to %s", url)
                        delivered = False
                        while not self.stop.is_set:
                            message = ws.recv(timeout=self._stall_timeout_s)
                            if not delivered:
                                delivered = True
                                self._backoff.reset()  # the connection works again
                            tweet = self.parse_event(message)
                            if self._clock() - self._last_save >= self._save_interval_s:
                                self.save_cursor()
                            if tweet is None:
                                continue
                            if not self._first_time(tweet.id):
                                self.stats.duplicates += 1
                                continue
                            self.stats.received += 1
                            yield tweet
                except InvalidURI as err:
                    raise JetstreamError(f"bad Jetstream URL {self.url!r}: {err}") from None
                except InvalidStatus as err:
                    status = err.response.status_code
                    if status in _FATAL_STATUSES:
                        raise JetstreamError(
                            f"Jetstream at {self.url!r} refused the connection (HTTP {status}): "
                            "check CRYPTOSENT_JETSTREAM_URL"
                        ) from None
                    self._trouble(f"HTTP {status} from Jetstream")
                except TimeoutError:
                    self._trouble(f"nothing received for {self._stall_timeout_s:.1f} s")
                except (WebSocketException, OSError) as err:
                    lost = "connection lost" if connected else "cannot connect"
                    self._trouble(f"{lost} ({type(err).__name__}: {err})")
                finally:
                    self._ws = None
                if self.stop.is_set:
                    return
                self.save_cursor()
                delay = self._backoff.next_delay()
                self.stats.reconnects += 1
                log.info("bluesky: reconnecting in %.1f s", delay)
                if self._sleep is not None:
                    self._sleep(delay)
                elif self.stop.wait(delay):
                    return
        finally:
            self.save_cursor()

    def _trouble(self, what: str) -> None:
        if self.stop.is_set:
            return  # our own interrupt, or a stop while connecting: not a problem of the feed
        log.warning("bluesky: %s", what)
        self.problem = f"Jetstream at {self.url} unreachable: {what}"

    def interrupt(self) -> None:
        """Shut the websocket's socket so a read waiting for the next event returns now."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(OSError):
                ws.socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop the feed and save the cursor (also when the feed thread was left behind)."""
        super().close()
        self.save_cursor()
