"""X (Twitter) API v2 filtered stream: keep our stream rules in place and yield matching tweets.

One long-lived ``GET /2/tweets/search/stream`` response, read line by line: a JSON object per
tweet, a blank ``\\r\\n`` keep-alive about every 20 s. Reconnects follow X's documented policy
(linear backoff for network errors, exponential for HTTP errors, a slower exponential for 429);
401/403 are fatal because retrying cannot fix a bad token or a plan without stream access.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

import httpx
import msgspec

from cryptosent.errors import CryptosentError, FatalError, TransientError
from cryptosent.model import Author, Metrics, Tweet, utc_now
from cryptosent.runtime import Backoff, StopSignal
from cryptosent.sources.base import StreamSource

log = logging.getLogger(__name__)

SOURCE_NAME: Final = "x"
DEFAULT_BASE_URL: Final = "https://api.x.com"
RULES_PATH: Final = "/2/tweets/search/stream/rules"
STREAM_PATH: Final = "/2/tweets/search/stream"
MAX_RULE_LENGTH: Final = 512
"""X's rule length limit on the smallest plan with filtered-stream access (larger plans: more)."""
STALL_TIMEOUT_S: Final = 90.0
"""X sends a keep-alive every ~20 s; nothing at all for 90 s means the connection is dead."""
DEFAULT_RULE_SUFFIX: Final = "-is:retweet lang:en"
DEFAULT_TAG_PREFIX: Final = "cryptosent"

TWEET_FIELDS: Final = (
    "created_at,lang,author_id,public_metrics,referenced_tweets,in_reply_to_user_id,note_tweet"
)
EXPANSIONS: Final = "author_id"
USER_FIELDS: Final = "username,public_metrics,verified"

# Status codes that retrying cannot fix (besides 401/403, which get their own message).
_FATAL_STATUSES: Final = frozenset({400, 404, 410, 413, 422})
_MAX_BODY_IN_ERROR: Final = 200


class StreamRule(NamedTuple):
    """One filtered-stream rule: the query ``value`` and the ``tag`` that names it."""

    value: str
    tag: str


class XStreamError(FatalError):
    """A fatal problem (bad token, no stream access, rejected rule); ``str()`` is one line."""


@dataclass
class XStreamStats:
    """Counters of one ``XFilteredStream`` (cumulative over reconnects)."""

    received: int = 0
    keepalives: int = 0
    skipped_malformed: int = 0
    operational_messages: int = 0
    reconnects: int = 0
    rules_added: int = 0
    rules_deleted: int = 0
    last_activity: float | None = None
    """``clock()`` when the last line (tweet or keep-alive) arrived."""


# --- X wire format (only the fields we use; msgspec ignores the rest) ------------------------


class _XPublicMetrics(msgspec.Struct):
    retweet_count: int | None = None
    reply_count: int | None = None
    like_count: int | None = None
    quote_count: int | None = None


class _XReferencedTweet(msgspec.Struct):
    type: str
    id: str


class _XNoteTweet(msgspec.Struct):
    text: str


class _XTweet(msgspec.Struct):
    id: str
    text: str
    created_at: datetime | None = None
    author_id: str | None = None
    lang: str | None = None
    public_metrics: _XPublicMetrics | None = None
    referenced_tweets: list[_XReferencedTweet] | None = None
    note_tweet: _XNoteTweet | None = None


class _XUserMetrics(msgspec.Struct):
    followers_count: int | None = None


class _XUser(msgspec.Struct):
    id: str
    username: str | None = None
    verified: bool | None = None
    public_metrics: _XUserMetrics | None = None


class _XIncludes(msgspec.Struct):
    users: list[_XUser] = msgspec.field(default_factory=list)


class _XStreamMessage(msgspec.Struct):
    data: _XTweet | None = None
    includes: _XIncludes | None = None
    errors: list[dict[str, Any]] | None = None


class _XRule(msgspec.Struct):
    id: str
    value: str
    tag: str | None = None


class _XRulesResponse(msgspec.Struct):
    data: list[_XRule] = msgspec.field(default_factory=list)
    errors: list[dict[str, Any]] | None = None


_message_decoder: Final = msgspec.json.Decoder(_XStreamMessage)
_rules_decoder: Final = msgspec.json.Decoder(_XRulesResponse)


class _RetryableStatus(TransientError):
    def __init__(self, status: int) -> None:
        super().__init__(f"X API answered HTTP {status}", service="X API", reason=f"HTTP {status}")
        self.status = status


class MalformedMessage(CryptosentError, ValueError):
    """A stream line that is neither a tweet nor an operational message (skipped, counted)."""


# --- pure helpers --------------------------------------------------------------------------------


def build_rules(
    terms: Iterable[str],
    *,
    suffix: str = DEFAULT_RULE_SUFFIX,
    max_length: int = MAX_RULE_LENGTH,
    tag_prefix: str = DEFAULT_TAG_PREFIX,
) -> list[StreamRule]:
    """Pack ``terms`` into as few ``(a OR b ...) <suffix>`` rules as fit ``max_length`` each.

    Terms containing spaces are quoted (exact phrase). Tags are ``<tag_prefix>-1``, ``-2``, ...
    """
    quoted = [f'"{t}"' if " " in t else t for t in (term.strip() for term in terms) if t]
    tail = f" {suffix}" if suffix else ""
    groups: list[list[str]] = []
    for term in quoted:
        if len(f"({term}){tail}") > max_length:
            raise ValueError(f"term {term!r} alone makes a rule over {max_length} characters")
        if groups and len(_rule_value(groups[-1] + [term], tail)) <= max_length:
            groups[-1].append(term)
        else:
            groups.append([term])
    return [
        StreamRule(_rule_value(group, tail), f"{tag_prefix}-{i}")
        for i, group in enumerate(groups, start=1)
    ]


def _rule_value(group: Sequence[str], tail: str) -> str:
    body = " OR ".join(group)
    return f"({body}){tail}" if len(group) > 1 else f"{body}{tail}"


def parse_stream_message(line: bytes) -> Tweet | list[dict[str, Any]]:
    """Map one stream line to a ``Tweet``, or return the ``errors`` of an operational message.

    Raises ``MalformedMessage`` for anything else (not JSON, wrong shape, neither data nor errors).
    """
    try:
        message = _message_decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as err:
        raise MalformedMessage(str(err)) from None
    if message.data is None:
        if message.errors:
            return message.errors
        raise MalformedMessage("neither `data` nor `errors`")
    return _to_tweet(message.data, message.includes)


def _to_tweet(data: _XTweet, includes: _XIncludes | None) -> Tweet:
    if not data.id:
        raise MalformedMessage("empty tweet id")
    author = None
    if data.author_id is not None:
        user = next(
            (u for u in (includes.users if includes else []) if u.id == data.author_id), None
        )
        author = Author(id=data.author_id)
        if user is not None:
            author.username = user.username
            author.verified = user.verified
            author.followers = user.public_metrics.followers_count if user.public_metrics else None
    metrics = None
    if data.public_metrics is not None:
        pm = data.public_metrics
        metrics = Metrics(
            likes=pm.like_count, retweets=pm.retweet_count, replies=pm.reply_count,
            quotes=pm.quote_count,
        )  # fmt: skip
    refs = {ref.type: ref.id for ref in data.referenced_tweets or []}
    return Tweet(
        id=data.id,
        # Posts over 280 characters arrive truncated in `text`; the full text is in note_tweet.
        text=data.note_tweet.text if data.note_tweet else data.text,
        # Always requested; if X ever omits it, the arrival time is the best event time we have.
        created_at=data.created_at if data.created_at is not None else utc_now(),
        author=author,
        lang=data.lang,
        source=SOURCE_NAME,
        retweet_of=refs.get("retweeted"),
        reply_to=refs.get("replied_to"),
        metrics=metrics,
    )


def _error_detail(response: httpx.Response) -> str:
    """X's own one-line explanation from an error body, shortened; never echoes our headers."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        text = response.text.strip().replace("\n", " ")
        return text[:_MAX_BODY_IN_ERROR]
    if isinstance(body, dict):
        for key in ("detail", "title", "reason"):
            if isinstance(body.get(key), str):
                return str(body[key])[:_MAX_BODY_IN_ERROR]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("message") or first.get("detail") or first)[:_MAX_BODY_IN_ERROR]
    return str(body)[:_MAX_BODY_IN_ERROR]


def _raise_for_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 401:
        raise XStreamError(
            f"X API rejected the bearer token (HTTP 401) on {what}: "
            "check CRYPTOSENT_X_BEARER_TOKEN (an app-only Bearer token of your X project)"
        )
    if status == 403:
        raise XStreamError(
            f"X API refused access (HTTP 403) on {what}: the app's access level does not include "
            f"the filtered stream, or the app is not in a project ({_error_detail(response)})"
        )
    if status in _FATAL_STATUSES:
        raise XStreamError(f"X API rejected {what} (HTTP {status}): {_error_detail(response)}")
    raise _RetryableStatus(status)


# --- the source ----------------------------------------------------------------------------------


class XFilteredStream(StreamSource):
    """Yield tweets from X's v2 filtered stream, keeping our rules in sync and reconnecting."""

    name = SOURCE_NAME

    def __init__(
        self,
        bearer_token: str,
        *,
        rules: Sequence[tuple[str, str]],
        base_url: str = DEFAULT_BASE_URL,
        sync_rules: bool = True,
        client: httpx.Client | None = None,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
        stop: StopSignal | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``rules`` are ``(value, tag)`` pairs (``build_rules(terms)``: which posts to receive is
        the caller's choice); ``client`` lets tests or callers supply their own
        ``httpx.Client`` (it is then not closed by ``close()``); ``stop`` (the command's: Ctrl-C,
        SIGTERM, ``--duration``) ends every wait; ``sleep`` replaces the reconnect waits (tests)."""
        super().__init__(stop)
        if not bearer_token:
            raise XStreamError("no X bearer token: set CRYPTOSENT_X_BEARER_TOKEN")
        self._base_url = base_url.rstrip("/")
        # Kept out of attributes that repr/log might show; only the request headers hold it.
        self._headers = {"Authorization": f"Bearer {bearer_token}", "User-Agent": "cryptosent"}
        self.rules = [StreamRule(v, t) for v, t in rules]
        self._sync_rules = sync_rules
        self._owns_client = client is None
        self._client = client or httpx.Client()
        self._timeout = httpx.Timeout(
            connect=connect_timeout_s, read=stall_timeout_s, write=connect_timeout_s,
            pool=connect_timeout_s,
        )  # fmt: skip
        self._sleep = sleep
        self._clock = clock
        self._response: httpx.Response | None = None
        self.stats = XStreamStats()
        # X's documented reconnect policy.
        self._network_backoff = Backoff.linear(initial=0.25, step=0.25, maximum=16.0)
        self._http_backoff = Backoff.exponential(initial=5.0, maximum=320.0)
        # X says "start with 1 minute and double"; the cap (16 min) just exceeds the 15-minute
        # rate-limit window so a long outage still retries about once per window.
        self._rate_limit_backoff = Backoff.exponential(initial=60.0, maximum=960.0)

    def __repr__(self) -> str:
        return f"XFilteredStream(base_url={self._base_url!r}, rules={len(self.rules)})"

    def close(self) -> None:
        """Stop reading and close the HTTP client if this object created it."""
        super().close()
        if self._owns_client:
            self._client.close()

    # -- rules --

    def sync_rules(self) -> None:
        """Make the app's stream rules exactly ours: delete the others, add the missing ones."""
        response = self._client.get(
            f"{self._base_url}{RULES_PATH}", headers=self._headers, timeout=self._timeout
        )
        _raise_for_status(response, "GET stream rules")
        existing = self._decode_rules(response, "GET stream rules").data
        wanted = set(self.rules)
        stale = [
            rule.id for rule in existing if StreamRule(rule.value, rule.tag or "") not in wanted
        ]
        present = {StreamRule(rule.value, rule.tag or "") for rule in existing}
        missing = [rule for rule in self.rules if rule not in present]
        if stale:
            self._post_rules({"delete": {"ids": stale}}, "delete stale stream rules")
            self.stats.rules_deleted += len(stale)
        if missing:
            payload = {"add": [{"value": r.value, "tag": r.tag} for r in missing]}
            self._post_rules(payload, "add stream rules")
            self.stats.rules_added += len(missing)
        log.info(
            "x: stream rules in sync (%d ours, %d stale deleted, %d added)",
            len(self.rules), len(stale), len(missing),
        )  # fmt: skip

    def _post_rules(self, payload: dict[str, Any], what: str) -> None:
        response = self._client.post(
            f"{self._base_url}{RULES_PATH}",
            headers=self._headers,
            content=msgspec.json.encode(payload),
            timeout=self._timeout,
        )
        _raise_for_status(response, what)
        errors = [
            e
            for e in self._decode_rules(response, what).errors or []
            if e.get("title") != "DuplicateRule"
        ]
        if errors:
            first = errors[0]
            detail = first.get("details") or first.get("detail") or first.get("title") or first
            raise XStreamError(f"X API rejected {what}: {detail} (value: {first.get('value')!r})")

    @staticmethod
    def _decode_rules(response: httpx.Response, what: str) -> _XRulesResponse:
        try:
            return _rules_decoder.decode(response.content)
        except msgspec.DecodeError as err:
            raise XStreamError(f"unexpected answer from X to {what}: {err}") from None

    # -- stream --

    def iter_tweets(self) -> Iterator[Tweet]:
        """Yield tweets until stopped (blocking), reconnecting as X documents."""
        rules_synced = not self._sync_rules
        while not self.stop.is_set:
            self.problem = self.problem or f"no answer from the X API at {self._base_url}"
            try:
                if not rules_synced:
                    self.sync_rules()
                    rules_synced = True
                yield from self._connect_once()
                # The server ended the stream cleanly (e.g. after an operational disconnect).
                delay = self._network_backoff.next_delay()
                self._trouble("stream closed by the server", delay)
            except httpx.UnsupportedProtocol as err:
                raise XStreamError(f"bad X API base URL {self._base_url!r}: {err}") from None
            except httpx.TransportError as err:
                delay = self._network_backoff.next_delay()
                kind = "stalled" if isinstance(err, httpx.ReadTimeout) else "network error"
                self._trouble(f"{kind} ({type(err).__name__}: {err})", delay)
            except _RetryableStatus as err:
                backoff = self._rate_limit_backoff if err.status == 429 else self._http_backoff
                delay = backoff.next_delay()
                self._trouble(str(err), delay)
            finally:
                self._response = None
            if self.stop.is_set:
                return
            self.stats.reconnects += 1
            if self._sleep is not None:
                self._sleep(delay)
            elif self.stop.wait(delay):
                return

    def _trouble(self, what: str, delay: float) -> None:
        if self.stop.is_set:
            return  # our own interrupt, or a stop while connecting: not a problem of the feed
        log.warning("x: %s; reconnecting in %.2f s", what, delay)
        self.problem = f"X API at {self._base_url} unreachable: {what}"

    def interrupt(self) -> None:
        """Shut the stream's socket so a read waiting for the next line returns now."""
        response = self._response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _connect_once(self) -> Iterator[Tweet]:
        params = {
            "tweet.fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "user.fields": USER_FIELDS,
        }
        with self._client.stream(
            "GET",
            f"{self._base_url}{STREAM_PATH}",
            params=params,
            headers=self._headers,
            timeout=self._timeout,
        ) as response:
            self._response = response
            if response.status_code >= 300:
                response.read()
                _raise_for_status(response, "the filtered stream")
            self.problem = None
            log.info("x: connected to the filtered stream")
            delivered = False
            buffer = bytearray()
            for chunk in response.iter_bytes():
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    line = bytes(buffer[start:end]).rstrip(b"\r")
                    start = end + 1
                    tweet = self._handle_line(line)
                    if tweet is not None:
                        if not delivered:
                            # A connection that delivers data resets every backoff (X's advice).
                            delivered = True
                            self._reset_backoff()
                        self.stats.received += 1
                        yield tweet
                del buffer[:start]
            # A partial line left in `buffer` was cut by the disconnect: X resends nothing, and
            # parsing half a line would be wrong, so it is dropped.

    def _handle_line(self, line: bytes) -> Tweet | None:
        self.stats.last_activity = self._clock()
        if not line.strip():
            self.stats.keepalives += 1
            return None
        try:
            parsed = parse_stream_message(line)
        except MalformedMessage as err:
            self.stats.skipped_malformed += 1
            log.warning("x: skipping a malformed stream line (%s)", err)
            return None
        if isinstance(parsed, Tweet):
            return parsed
        self.stats.operational_messages += 1
        log.warning("x: operational message from X: %s", parsed[0] if parsed else parsed)
        return None

    def _reset_backoff(self) -> None:
        self._network_backoff.reset()
        self._http_backoff.reset()
        self._rate_limit_backoff.reset()
