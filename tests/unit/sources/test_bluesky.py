"""Bluesky Jetstream source against a local Jetstream-like websocket server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from fake_servers import Connection, FakeJetstream, FakeXServer, jetstream_post

from cryptosent.model import Tweet
from cryptosent.relevance import crypto_filter, keyword_matcher
from cryptosent.sources.bluesky import JetstreamError, JetstreamSource, post_uri

CRYPTO = crypto_filter()

pytestmark = pytest.mark.timeout(30)

BASE_US = 1_725_911_162_000_000
SECOND_US = 1_000_000


def t(i: int) -> int:
    return BASE_US + i * SECOND_US


def uri(rkey: str, did: str = "did:plc:alice") -> str:
    return post_uri(did, rkey)


PARENT = {"uri": uri("parent", "did:plc:bob"), "cid": "bafyparent"}
EVENTS: list[dict[str, Any] | str] = [
    jetstream_post(t(0), "a0", "Bitcoin is breaking out"),  # 0 crypto
    jetstream_post(t(1), "a1", "lovely weather today"),  # 1 not crypto
    {"did": "did:plc:carol", "time_us": t(2), "kind": "identity",
     "identity": {"did": "did:plc:carol", "handle": "carol.bsky.social", "seq": 1,
                  "time": "2024-09-09T19:46:04.000Z"}},  # 2 identity
    '{"did": "did:plc:broken", "time_us": ',  # 3 malformed JSON
    {"did": "did:plc:alice", "time_us": t(4), "kind": "commit",
     "commit": {"rev": "r", "operation": "delete", "collection": "app.bsky.feed.post",
                "rkey": "old"}},  # 4 delete
    jetstream_post(t(5), "a5", "$ETH to 10k", reply={"root": PARENT, "parent": PARENT},
                   langs=["de", "en"]),  # 5 crypto reply
    {"did": "did:plc:dave", "time_us": t(6), "kind": "account",
     "account": {"active": False, "did": "did:plc:dave", "seq": 2,
                 "time": "2024-09-09T19:46:08.000Z", "status": "deactivated"}},  # 6 account
    jetstream_post(t(7), "a7", "crypto is wild", createdAt="yesterday", langs=[]),  # 7
    jetstream_post(t(8), "a8", "$SOL moon", createdAt="2024-09-09T21:46:02+02:00"),  # 8
    jetstream_post(t(9), "a9", "my cat ate my homework"),  # 9 not crypto
    jetstream_post(t(10), "a10", "ethereum gas fees are low"),  # 10
    {"did": "did:plc:alice", "time_us": t(11), "kind": "commit",
     "commit": {"rev": "r", "operation": "update", "collection": "app.bsky.feed.post",
                "rkey": "a10", "record": {"text": "ethereum edited", "createdAt": "x"}}},  # 11
]  # fmt: skip


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def take(source: JetstreamSource, n: int) -> list[Tweet]:
    generator = source.iter_tweets()
    try:
        return list(islice(generator, n))
    finally:
        generator.close()


def test_parse_event_maps_posts_and_counts_the_rest() -> None:
    source = JetstreamSource(accept=CRYPTO)
    tweets = [source.parse_event(e if isinstance(e, str) else json.dumps(e)) for e in EVENTS]
    got = [tw for tw in tweets if tw is not None]
    assert [tw.id for tw in got] == [uri("a0"), uri("a5"), uri("a7"), uri("a8"), uri("a10")]
    first, reply, bad_time, offset = got[0], got[1], got[2], got[3]
    assert first.text == "Bitcoin is breaking out"
    assert first.created_at == datetime(2024, 9, 9, 19, 46, 2, 102000, tzinfo=UTC)
    assert first.source == "bluesky" and first.lang == "en"
    assert first.author is not None and first.author.id == "did:plc:alice"
    assert reply.reply_to == PARENT["uri"] and reply.lang == "de"
    # malformed createdAt falls back to the relay's time_us; empty langs -> no lang
    assert bad_time.created_at == datetime.fromtimestamp(t(7) / 1e6, UTC)
    assert bad_time.lang is None
    assert offset.created_at == datetime(2024, 9, 9, 19, 46, 2, tzinfo=UTC)
    assert source.stats.events == 12
    assert source.stats.skipped_malformed == 1
    assert source.stats.skipped_other == 4  # identity, delete, account, update
    assert source.stats.filtered_out == 2
    assert source.cursor == t(11)


def test_keyword_matcher_is_word_bounded_and_case_insensitive() -> None:
    match = keyword_matcher(["crypto", "$PEPE", "stablecoin"])
    assert match("CRYPTO winter") and match("#crypto") and match("love $pepe!")
    assert match("a stablecoin.")
    assert not match("cryptography is fun")
    assert not match("pepe the frog")  # the cashtag needs its $
    assert not match("stablecoins")  # whole words only: plurals are listed separately
    assert not keyword_matcher([])("crypto")


@pytest.mark.timeout(20)
def test_reconnects_with_cursor_and_drops_duplicates() -> None:
    sleeps = Sleeps()
    server = FakeJetstream(
        EVENTS, [Connection(count=7, end="drop"), Connection(count=20, end="hang")]
    )
    with server:
        source = JetstreamSource(server.url, accept=CRYPTO, sleep=sleeps)
        tweets = take(source, 5)

    assert [tw.id for tw in tweets] == [uri("a0"), uri("a5"), uri("a7"), uri("a8"), uri("a10")]
    first, second = server.queries()
    assert first["wantedCollections"] == ["app.bsky.feed.post"]
    assert "cursor" not in first
    # resumes 5 s before the last event seen (event 6), so Jetstream replays events 1..
    assert second["cursor"] == [str(t(6) - 5 * SECOND_US)]
    assert second["wantedCollections"] == ["app.bsky.feed.post"]
    assert sleeps.calls == [1.0]
    stats = source.stats
    assert (stats.received, stats.duplicates, stats.reconnects) == (5, 1, 1)
    assert stats.events == 7 + 10  # events 0-6, then 1-10 replayed
    assert stats.skipped_malformed == 2
    assert stats.skipped_other == 6
    assert stats.filtered_out == 3


def test_cursor_file_survives_a_restart(tmp_path: Path) -> None:
    cursor_file = tmp_path / "jetstream.cursor"
    with FakeJetstream(EVENTS, [Connection(count=3, end="hang")]) as server:
        first = JetstreamSource(server.url, accept=CRYPTO, cursor_path=cursor_file, sleep=Sleeps())
        assert [tw.id for tw in take(first, 1)] == [uri("a0")]
    assert cursor_file.read_text().strip() == str(t(0))

    with FakeJetstream(EVENTS, [Connection(count=20, end="hang")]) as server:
        second = JetstreamSource(server.url, accept=CRYPTO, cursor_path=cursor_file, sleep=Sleeps())
        assert second.cursor == t(0)
        # At-least-once across restarts: the post at the cursor comes again (keyed by id).
        assert [tw.id for tw in take(second, 2)] == [uri("a0"), uri("a5")]
        assert server.queries()[0]["cursor"] == [str(t(0) - 5 * SECOND_US)]
    assert int(cursor_file.read_text()) == t(5)


def test_unreadable_cursor_file_is_ignored(tmp_path: Path) -> None:
    cursor_file = tmp_path / "cursor"
    cursor_file.write_text("not a number")
    source = JetstreamSource(accept=CRYPTO, cursor_path=cursor_file)
    assert source.cursor is None
    assert "cursor=" not in source.subscribe_url()


def test_stall_reconnects_and_backoff_grows_only_without_data() -> None:
    sleeps = Sleeps()
    script = [
        Connection(count=1, end="hang"),  # one post, then silence: stall
        Connection(count=0, end="close"),  # nothing at all
        Connection(count=0, end="drop"),  # nothing at all
        Connection(count=20, end="hang"),
    ]
    with FakeJetstream(EVENTS, script) as server:
        source = JetstreamSource(server.url, accept=CRYPTO, sleep=sleeps, stall_timeout_s=0.3)
        tweets = take(source, 2)
    assert [tw.id for tw in tweets] == [uri("a0"), uri("a5")]
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert len(server.paths) == 4
    assert all(q["cursor"] == [str(t(0) - 5 * SECOND_US)] for q in server.queries()[1:])


def test_fatal_errors_are_one_line() -> None:
    with pytest.raises(JetstreamError, match="ws:// or wss://"):
        JetstreamSource("https://jetstream.example/subscribe", accept=CRYPTO)
    with FakeXServer([]) as http_only:  # answers 404 to /subscribe
        url = http_only.base_url.replace("http://", "ws://") + "/subscribe"
        source = JetstreamSource(url, accept=CRYPTO, sleep=Sleeps())
        with pytest.raises(JetstreamError, match="HTTP 404") as caught:
            take(source, 1)
    assert "\n" not in str(caught.value)
