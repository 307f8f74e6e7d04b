"""X filtered stream against a local fake X API: rules, parsing, keep-alives, reconnect policy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice

import httpx
import pytest
from fake_servers import KEEPALIVE, FakeXServer, Status, Stream, x_tweet_line

from cryptosent.model import Tweet
from cryptosent.relevance import x_track_terms
from cryptosent.runtime import Backoff
from cryptosent.sources.x_api import (
    MAX_RULE_LENGTH,
    XFilteredStream,
    XStreamError,
    build_rules,
    parse_stream_message,
)

pytestmark = pytest.mark.timeout(30)

TOKEN = "AAAA-secret-token"
OURS = [("($BTC OR bitcoin) -is:retweet", "cryptosent-1"), ("$ETH -is:retweet", "cryptosent-2")]


class Sleeps:
    """An injected sleep that records durations and returns at once."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise StopIteration_("enough sleeps")


class StopIteration_(Exception):
    pass


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


def make_stream(
    server: FakeXServer, client: httpx.Client, sleeps: Sleeps, **kwargs: object
) -> XFilteredStream:
    return XFilteredStream(
        TOKEN,
        base_url=server.base_url,
        rules=OURS,
        client=client,
        sleep=sleeps,
        **kwargs,  # type: ignore[arg-type]
    )


def take(stream: XFilteredStream, n: int) -> list[Tweet]:
    generator = stream.iter_tweets()
    try:
        return list(islice(generator, n))
    finally:
        generator.close()


def ids(*numbers: int) -> list[str]:
    return [f"17{n:08d}" for n in numbers]


# --- pure parts ----------------------------------------------------------------------------


def test_build_rules_from_the_catalogue_fit_the_limit_and_cover_every_term() -> None:
    terms = x_track_terms()
    assert {"$BTC", "$ETH", "bitcoin", "ethereum", "shiba inu", "crypto"} <= set(terms)
    assert "sol" not in terms and "$SOL" in terms  # bare ambiguous tickers are left out
    assert len(build_rules(terms)) == 1  # the catalogue's top coins fit one 512-char rule
    rules = build_rules(terms, max_length=150)
    assert len(rules) >= 3
    assert all(len(r.value) <= 150 for r in rules)
    assert all(len(r.value) <= MAX_RULE_LENGTH for r in build_rules(terms))
    assert all(r.value.endswith(" -is:retweet lang:en") for r in rules)
    assert [r.tag for r in rules] == [f"cryptosent-{i}" for i in range(1, len(rules) + 1)]
    joined = " ".join(r.value for r in rules)
    for term in terms:
        assert (f'"{term}"' if " " in term else term) in joined
    assert '"shiba inu"' in joined


def test_build_rules_packs_greedily() -> None:
    rules = build_rules(["$BTC", "$ETH", "bitcoin"], suffix="lang:en", max_length=30)
    assert [r.value for r in rules] == ["($BTC OR $ETH) lang:en", "bitcoin lang:en"]
    with pytest.raises(ValueError, match="over 10 characters"):
        build_rules(["ethereum"], suffix="lang:en", max_length=10)


def test_parse_stream_message_maps_every_field() -> None:
    line = json.dumps(
        {
            "data": {
                "id": "42",
                "text": "RT truncated…",
                "note_tweet": {"text": "the full long text about $ETH"},
                "created_at": "2024-01-01T10:00:00.000Z",
                "author_id": "7",
                "lang": "en",
                "public_metrics": {"retweet_count": 1, "reply_count": 2, "like_count": 3,
                                   "quote_count": 4},
                "referenced_tweets": [{"type": "replied_to", "id": "41"},
                                      {"type": "quoted", "id": "40"}],
                "in_reply_to_user_id": "8",
            },
            "includes": {"users": [
                {"id": "8", "username": "other"},
                {"id": "7", "username": "satoshi", "verified": True,
                 "public_metrics": {"followers_count": 21000000}},
            ]},
            "matching_rules": [{"id": "1", "tag": "cryptosent-1"}],
        }
    ).encode()  # fmt: skip
    tweet = parse_stream_message(line)
    assert isinstance(tweet, Tweet)
    assert tweet.id == "42"
    assert tweet.text == "the full long text about $ETH"
    assert tweet.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert tweet.source == "x" and tweet.lang == "en"
    assert tweet.author is not None
    assert (tweet.author.id, tweet.author.username, tweet.author.followers) == (
        "7",
        "satoshi",
        21000000,
    )
    assert tweet.author.verified is True
    assert tweet.metrics is not None
    assert (tweet.metrics.likes, tweet.metrics.retweets, tweet.metrics.replies) == (3, 1, 2)
    assert tweet.metrics.quotes == 4
    assert tweet.reply_to == "41" and tweet.retweet_of is None

    retweet = parse_stream_message(
        b'{"data":{"id":"43","text":"RT @a: hi","created_at":"2024-01-01T10:00:00Z",'
        b'"referenced_tweets":[{"type":"retweeted","id":"9"}]}}'
    )
    assert isinstance(retweet, Tweet)
    assert retweet.retweet_of == "9" and retweet.author is None


def test_backoff_sequences_and_caps() -> None:
    linear = Backoff.linear(initial=0.25, step=0.25, maximum=16.0)
    delays = [linear.next_delay() for _ in range(70)]
    assert delays[:4] == [0.25, 0.5, 0.75, 1.0]
    assert delays[63:] == [16.0] * 7
    exponential = Backoff.exponential(initial=5.0, maximum=320.0)
    assert [exponential.next_delay() for _ in range(9)] == [5, 10, 20, 40, 80, 160, 320, 320, 320]
    exponential.reset()
    assert exponential.next_delay() == 5.0


# --- against the fake server -----------------------------------------------------------------


def test_rule_sync_deletes_stale_and_adds_ours(client: httpx.Client) -> None:
    stale = {"value": "dogecoin", "tag": "someone-else"}
    kept = {"value": OURS[0][0], "tag": OURS[0][1]}
    with FakeXServer([], rules=[stale, kept]) as server:
        stale_id = next(i for i, r in server.rules.items() if r["value"] == "dogecoin")
        stream = make_stream(server, client, Sleeps())
        stream.sync_rules()

        assert sorted((r["value"], r["tag"]) for r in server.rules.values()) == sorted(OURS)
        posts = [json.loads(r.body) for r in server.requests if r.method == "POST"]
        assert posts == [
            {"delete": {"ids": [stale_id]}},
            {"add": [{"value": OURS[1][0], "tag": OURS[1][1]}]},
        ]
        assert (stream.stats.rules_deleted, stream.stats.rules_added) == (1, 1)
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)

        # already in sync: one GET, no POST
        before = len(server.requests)
        stream.sync_rules()
        assert [r.method for r in server.requests[before:]] == ["GET"]


def test_stream_survives_drop_keepalives_and_bad_lines(client: httpx.Client) -> None:
    operational = (
        b'{"errors":[{"title":"operational-disconnect","disconnect_type":'
        b'"UpstreamOperationalDisconnect","detail":"This stream has been disconnected"}]}\r\n'
    )
    t2, t4 = x_tweet_line(2), x_tweet_line(4)
    first = Stream(
        [
            KEEPALIVE,
            x_tweet_line(1),
            t2[:15],  # a line split across chunks
            t2[15:] + KEEPALIVE,
            b"this is not json\r\n",
            operational,
            x_tweet_line(3),
            t4[:40],  # the connection dies in the middle of tweet 4
        ],
        end="drop",
    )
    second = Stream([t4, x_tweet_line(5), KEEPALIVE, b'{"data":{"id":"x"}}\r\n', x_tweet_line(6)])
    sleeps = Sleeps()
    with FakeXServer([first, second]) as server:
        stream = make_stream(server, client, sleeps)
        tweets = take(stream, 6)

        assert [t.id for t in tweets] == ids(1, 2, 3, 4, 5, 6)
        assert tweets[0].author is not None and tweets[0].author.username == "user_one"
        assert tweets[0].author.followers == 1234
        assert stream.stats.received == 6
        assert stream.stats.skipped_malformed == 2
        assert stream.stats.operational_messages == 1
        assert stream.stats.keepalives == 3
        assert stream.stats.reconnects == 1
        assert sleeps.calls == [0.25]
        assert server.stream_connections == 2
        stream_request = next(r for r in server.requests if r.path == "/2/tweets/search/stream")
        assert stream_request.query["expansions"] == ["author_id"]
        assert "public_metrics" in stream_request.query["tweet.fields"][0]
        assert stream_request.query["user.fields"] == ["username,public_metrics,verified"]
        assert stream_request.headers["authorization"] == f"Bearer {TOKEN}"


def test_http_errors_back_off_exponentially_then_reset(client: httpx.Client) -> None:
    script: list[Status | Stream] = [
        Status(503, {"title": "Service Unavailable"}),
        Status(503),
        Status(500),
        Stream([x_tweet_line(1)], end="drop"),
        Status(503),
        Stream([x_tweet_line(2)]),
    ]
    sleeps = Sleeps()
    with FakeXServer(script) as server:
        stream = make_stream(server, client, sleeps, sync_rules=False)
        assert [t.id for t in take(stream, 2)] == ids(1, 2)
    # 5, 10, 20 for the 5xx; data resets everything: 0.25 for the drop, 5 again for the 503
    assert sleeps.calls == [5.0, 10.0, 20.0, 0.25, 5.0]
    assert stream.stats.reconnects == 5


def test_rate_limit_backs_off_from_one_minute(client: httpx.Client) -> None:
    limited = Status(429, {"title": "ConnectionException", "detail": "Too many connections"})
    sleeps = Sleeps()
    with FakeXServer([limited, limited, limited, Stream([x_tweet_line(1)])]) as server:
        stream = make_stream(server, client, sleeps, sync_rules=False)
        assert [t.id for t in take(stream, 1)] == ids(1)
    assert sleeps.calls == [60.0, 120.0, 240.0]


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "HTTP 401.*CRYPTOSENT_X_BEARER_TOKEN"), (403, "HTTP 403.*filtered stream")],
)
def test_auth_errors_are_fatal_and_do_not_leak_the_token(
    client: httpx.Client, status: int, message: str
) -> None:
    sleeps = Sleeps()
    body = {"title": "Unauthorized", "detail": "Unauthorized"}
    with FakeXServer([Status(status, body)]) as server:
        stream = make_stream(server, client, sleeps, sync_rules=False)
        with pytest.raises(XStreamError, match=message) as caught:
            take(stream, 1)
    text = str(caught.value)
    assert "\n" not in text and TOKEN not in text
    assert TOKEN not in repr(stream)
    assert sleeps.calls == []
    assert server.stream_connections == 1


def test_auth_error_on_rule_sync_is_fatal() -> None:
    # No server needed to answer the stream: the first request (rules) already fails.
    transport = httpx.MockTransport(lambda request: httpx.Response(401, json={"title": "x"}))
    with httpx.Client(transport=transport) as mocked:
        stream = XFilteredStream(TOKEN, rules=OURS, client=mocked, sleep=Sleeps())
        with pytest.raises(XStreamError, match=r"HTTP 401\) on GET stream rules"):
            take(stream, 1)


def test_network_errors_back_off_linearly(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps(stop_after=5)
    stream = XFilteredStream(
        TOKEN,
        rules=OURS,
        base_url=f"http://127.0.0.1:{port}",
        client=client,
        sleep=sleeps,
        sync_rules=False,
    )
    with pytest.raises(StopIteration_):
        take(stream, 1)
    assert sleeps.calls == [0.25, 0.5, 0.75, 1.0, 1.25]


def test_stall_without_keepalives_reconnects_but_keepalives_keep_it_alive(
    client: httpx.Client,
) -> None:
    keepalive_only = Stream([KEEPALIVE] * 6 + [x_tweet_line(1)], interval=0.1)
    silent = Stream([x_tweet_line(2)], end="hang")  # then nothing at all
    sleeps = Sleeps()
    with FakeXServer([keepalive_only, silent, Stream([x_tweet_line(3)])]) as server:
        stream = make_stream(server, client, sleeps, sync_rules=False, stall_timeout_s=0.3)
        tweets = take(stream, 3)
    assert [t.id for t in tweets] == ids(1, 2, 3)
    # 0.6 s of keep-alives 0.1 s apart never tripped the 0.3 s stall timer; the silence did
    assert stream.stats.reconnects == 2
    assert sleeps.calls == [0.25, 0.25]
