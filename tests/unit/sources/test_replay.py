"""File replay: JSON Lines / CSV / gzip decoding with bad lines, column mapping, and pacing."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptosent.model import Tweet
from cryptosent.sources.replay import (
    ReplayError,
    infer_format,
    paced,
    parse_timestamp,
    read_replay,
)

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)

JSONL_LINES = [
    b'{"id":"1","text":"btc up","created_at":"2024-01-01T10:00:00Z"}',
    b'{"id":"2","text":"eth down","created_at":"2024-01-01T11:00:00+01:00","source":"mock"}',
    b"{not json",  # line 3
    b'{"id":"3","created_at":"2024-01-01T10:00:02Z"}',  # line 4: no text
    b"",  # line 5: blank, silently skipped
    b'{"id":"4","text":"bad time","created_at":"yesterday"}',  # line 6
    b'{"id":"5","text":"caf\xe9","created_at":"2024-01-01T10:00:03Z"}',  # line 7: latin-1
    b'{"id":"6","text":"sol","created_at":"2024-01-01T10:00:04Z","lang":"en"}',
]


class BadLines:
    """Collects on_bad_line reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, str]] = []

    def __call__(self, line_number: int, reason: str) -> None:
        self.reports.append((line_number, reason))

    @property
    def lines(self) -> list[int]:
        return [n for n, _ in self.reports]


def write_lines(path: Path, lines: list[bytes], *, compress: bool = False) -> Path:
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_jsonl_skips_and_reports_bad_lines(tmp_path: Path) -> None:
    bad = BadLines()
    tweets = list(read_replay(write_lines(tmp_path / "t.jsonl", JSONL_LINES), on_bad_line=bad))

    assert [t.id for t in tweets] == ["1", "2", "6"]
    assert bad.lines == [3, 4, 6, 7]
    assert "not JSON" in bad.reports[0][1]
    assert "text" in bad.reports[1][1]
    assert all("\n" not in reason for _, reason in bad.reports)
    # offsets are normalised to UTC, a given source is kept, a missing one becomes "replay"
    assert tweets[1].created_at == T0 and tweets[1].created_at.utcoffset() == timedelta(0)
    assert tweets[1].source == "mock"
    assert tweets[0].source == "replay"
    assert tweets[2].lang == "en"


def test_jsonl_gzip_same_result(tmp_path: Path) -> None:
    bad = BadLines()
    path = write_lines(tmp_path / "t.jsonl.gz", JSONL_LINES, compress=True)
    tweets = list(read_replay(path, on_bad_line=bad))
    assert [t.id for t in tweets] == ["1", "2", "6"]
    assert bad.lines == [3, 4, 6, 7]


def test_truncated_gzip_reports_and_stops(tmp_path: Path) -> None:
    good = [b'{"id":"%d","text":"x","created_at":"2024-01-01T10:00:00Z"}' % i for i in range(2000)]
    data = gzip.compress(b"\n".join(good) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    bad = BadLines()
    tweets = list(read_replay(path, on_bad_line=bad))
    assert 0 < len(tweets) < 2000
    assert bad.lines == [len(tweets) + 1]
    assert "unreadable" in bad.reports[0][1]


CSV_TEXT = (
    "tweet_id,body,date,user,followers,lang\n"
    "10,Bitcoin to the moon,2024-01-01 10:00:00,alice,120,en\n"  # line 2
    "11,no date,,bob,1,en\n"  # line 3: empty timestamp
    '12,"multi\nline text",1704103200,carol,,de\n'  # lines 4-5: epoch seconds
    "13,bad followers,2024-01-01T10:00:00Z,dan,lots,en\n"  # line 6
    ",no id,2024-01-01T10:00:00Z,erin,3,en\n"  # line 7
    "14,iso with offset,2024-01-01T12:00:00+02:00,frank,5,\n"  # line 8
    "15,short row\n"  # line 9
    "16,twitter format,Mon Jan 01 10:00:00 +0000 2024,gina,7,en\n"  # line 10
)
CSV_COLUMNS = {"id": "tweet_id", "text": "body", "created_at": "date", "author": "user"}


def test_csv_column_mapping_and_lenient_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    bad = BadLines()
    tweets = list(read_replay(path, columns=CSV_COLUMNS, on_bad_line=bad))

    assert [t.id for t in tweets] == ["10", "12", "14", "16"]
    assert bad.lines == [3, 6, 7, 9]
    by_id = {t.id: t for t in tweets}
    assert by_id["10"].created_at == T0
    assert by_id["10"].author is not None
    assert by_id["10"].author.username == "alice"
    assert by_id["10"].author.followers == 120
    assert by_id["10"].lang == "en"
    assert by_id["10"].source == "replay"
    assert by_id["12"].text == "multi\nline text"
    assert by_id["12"].created_at == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert by_id["14"].created_at == T0
    assert by_id["14"].lang is None
    assert by_id["16"].created_at == T0


def test_csv_bad_encoding_and_gzip(tmp_path: Path) -> None:
    raw = (
        b"id,text,created_at\n"
        b"1,ok,2024-01-01T10:00:00Z\n"
        b"2,caf\xe9,2024-01-01T10:00:00Z\n"  # line 3: latin-1
        b"3,also ok,1704103200000\n"  # epoch milliseconds
    )
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(raw))
    bad = BadLines()
    tweets = list(read_replay(path, on_bad_line=bad))
    assert [t.id for t in tweets] == ["1", "3"]
    assert tweets[1].created_at == T0
    assert bad.reports == [(3, "not UTF-8")]


def test_csv_synthetic_ids_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "kaggle.csv"
    path.write_text("date,text\n2024-01-01 10:00:00,hi\n2024-01-01 10:00:01,ho\n")
    tweets = list(read_replay(path, columns={"id": None, "created_at": "date"}))
    assert [t.id for t in tweets] == ["kaggle.csv:2", "kaggle.csv:3"]

    # raised by the call itself, before any tweet is read
    with pytest.raises(ReplayError, match="no column 'id'"):
        read_replay(path, columns={"created_at": "date"})
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert list(read_replay(empty)) == []


def test_format_inference_and_missing_file(tmp_path: Path) -> None:
    assert infer_format(Path("a.jsonl.gz")) == "jsonl"
    assert infer_format(Path("a.NDJSON")) == "jsonl"
    assert infer_format(Path("a.csv.gz")) == "csv"
    with pytest.raises(ReplayError, match="cannot tell the format"):
        infer_format(Path("a.txt"))
    with pytest.raises(ReplayError, match="no such file"):
        read_replay(tmp_path / "missing.jsonl")
    # explicit format wins over the name
    path = write_lines(tmp_path / "data.txt", JSONL_LINES[:1])
    assert [t.id for t in read_replay(path, fmt="jsonl")] == ["1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T10:00:00Z", T0),
        ("2024-01-01T10:00:00.000Z", T0),
        ("2024-01-01 10:00:00", T0),
        ("2024-01-01T05:00:00-05:00", T0),
        ("1704103200", T0),
        ("1704103200.0", T0),
        ("1704103200000", T0),
        ("Mon Jan 01 10:00:00 +0000 2024", T0),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "  ", "yesterday", "2024-13-01", "1e999"])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


class FakeTime:
    """A clock that only moves when slept on (or when told to)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


def tweets_at(*offsets: float) -> list[Tweet]:
    return [
        Tweet(id=str(i), text="x", created_at=T0 + timedelta(seconds=s))
        for i, s in enumerate(offsets)
    ]


def test_paced_speed_reproduces_gaps_divided_by_speed() -> None:
    fake = FakeTime()
    out = list(paced(tweets_at(0, 2, 3, 3, 10), speed=2, sleep=fake.sleep, clock=fake.clock))
    assert [t.id for t in out] == ["0", "1", "2", "3", "4"]
    assert fake.sleeps == [1.0, 0.5, 3.5]
    # original timestamps are kept
    assert out[4].created_at == T0 + timedelta(seconds=10)


def test_paced_backwards_timestamps_never_sleep_negative() -> None:
    fake = FakeTime()
    list(paced(tweets_at(0, 4, 1, 2, 6), speed=1, sleep=fake.sleep, clock=fake.clock))
    # 4 -> 1 -> 2 are "no gap"; 6 is 2 s after the latest seen (4)
    assert fake.sleeps == [4.0, 2.0]


def test_paced_accounts_for_consumer_time_and_caps_gaps() -> None:
    fake = FakeTime()
    out = []
    for tweet in paced(
        tweets_at(0, 10, 20, 3600), speed=1, max_gap_s=30, sleep=fake.sleep, clock=fake.clock
    ):
        out.append(tweet)
        fake.now += 4  # the consumer takes 4 s per tweet: sleeps shrink, no drift
    assert fake.sleeps == [6.0, 6.0, 26.0]


def test_paced_fixed_rate() -> None:
    fake = FakeTime()
    list(paced(tweets_at(0, 100, 0, 5), rate_per_s=4, sleep=fake.sleep, clock=fake.clock))
    assert fake.sleeps == [0.25, 0.25, 0.25]


def test_paced_unpaced_and_restamp() -> None:
    fake = FakeTime()
    stamp = datetime(2030, 5, 5, tzinfo=UTC)
    out = list(
        paced(
            tweets_at(0, 100), restamp=True, now=lambda: stamp, sleep=fake.sleep, clock=fake.clock
        )
    )
    assert fake.sleeps == []
    assert [t.created_at for t in out] == [stamp, stamp]


def test_paced_rejects_conflicting_options() -> None:
    with pytest.raises(ValueError, match="not both"):
        list(paced(tweets_at(0), speed=1, rate_per_s=1))
    with pytest.raises(ValueError, match="speed must be"):
        list(paced(tweets_at(0), speed=0))
