"""Price replay: JSON Lines (the contract) and CSV (columns, pairs, lenient times), gzip, bad
lines reported with their number, pacing by the prices' own times."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptosent.model import PriceTick
from cryptosent.relevance import coin_tickers
from cryptosent.runtime import StopSignal
from cryptosent.sources.exchanges.kraken import KRAKEN_NAMES
from cryptosent.sources.exchanges.pairs import PairMap
from cryptosent.sources.price_replay import price_replay_source, read_price_replay
from cryptosent.sources.replay import ReplayError

pytestmark = pytest.mark.timeout(30)

PAIRS = PairMap(coin_tickers(), KRAKEN_NAMES)
T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)

JSONL = [
    b'{"coin":"BTC","ts":"2024-01-01T10:00:00Z","price":42000.5,"size":0.1}',
    b'{"coin":"ETH","ts":"2024-01-01T11:00:01+01:00","price":2300,"source":"kraken"}',
    b"{not json",  # line 3
    b'{"coin":"DOGGO","ts":"2024-01-01T10:00:02Z","price":1}',  # line 4: unknown coin
    b"",  # line 5: blank, silently skipped
    b'{"coin":"BTC","ts":"2024-01-01T10:00:03Z","price":-1}',  # line 6
    b'{"coin":"BTC","ts":"2024-01-01T10:00:04Z","price":"42000"}',  # line 7: a string
    b'{"coin":"SOL","ts":"2024-01-01T10:00:05Z","price":100.25,"size":3}',
]


class BadLines:
    def __init__(self) -> None:
        self.reports: list[tuple[int, str]] = []

    def __call__(self, line_number: int, reason: str) -> None:
        self.reports.append((line_number, reason))

    @property
    def lines(self) -> list[int]:
        return [n for n, _ in self.reports]


def write(path: Path, lines: list[bytes], *, compress: bool = False) -> Path:
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("name", ["p.jsonl", "p.jsonl.gz"])
def test_jsonl_is_the_contract_and_bad_lines_are_reported(tmp_path: Path, name: str) -> None:
    bad = BadLines()
    path = write(tmp_path / name, JSONL, compress=name.endswith(".gz"))
    ticks = list(read_price_replay(path, pairs=PAIRS, on_bad_line=bad))
    assert ticks == [
        PriceTick("BTC", T0, 42000.5, 0.1, "replay"),
        PriceTick("ETH", T0 + timedelta(seconds=1), 2300.0, None, "kraken"),
        PriceTick("SOL", T0 + timedelta(seconds=5), 100.25, 3.0, "replay"),
    ]
    assert bad.lines == [3, 4, 6, 7]
    reasons = dict(bad.reports)
    assert "not JSON" in reasons[3] and "unknown coin 'DOGGO'" in reasons[4]
    assert "`price` is -1.0" in reasons[6] and "Expected `float`, got `str`" in reasons[7]


def test_csv_with_pairs_epoch_times_and_a_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        "time,symbol,last,qty\n"
        "1704103200,BTC-USD,42000.5,0.1\n"  # epoch seconds
        "1704103201000,XBTUSD,42001,\n"  # epoch milliseconds, Kraken's pair, no size
        "2024-01-01 10:00:02,ETHUSDT,2300.5,2\n"  # no offset: UTC
        "2024-01-01T10:00:03Z,BTC-EUR,39000,1\n"  # line 5: not a USD quote
        "2024-01-01T10:00:04Z,SOL,abc,1\n"  # line 6: not a number
        "yesterday,SOL,100,1\n"  # line 7
        "\n"
        "2024-01-01T10:00:06Z,sol,100.5,-2\n"  # line 9: negative size
        "2024-01-01T10:00:07Z,sol,100.5\n"  # line 10: too few columns
        "2024-01-01T10:00:08Z,DOGE/USD,0.1,5\n",
        encoding="utf-8",
    )
    bad = BadLines()
    columns = {"ts": "time", "coin": "symbol", "price": "last", "size": "qty"}
    ticks = list(read_price_replay(path, pairs=PAIRS, columns=columns, on_bad_line=bad))
    assert [(t.coin, t.ts, t.price, t.size, t.source) for t in ticks] == [
        ("BTC", T0, 42000.5, 0.1, "replay"),
        ("BTC", T0 + timedelta(seconds=1), 42001.0, None, "replay"),
        ("ETH", T0 + timedelta(seconds=2), 2300.5, 2.0, "replay"),
        ("DOGE", T0 + timedelta(seconds=8), 0.1, 5.0, "replay"),
    ]
    assert bad.lines == [5, 6, 7, 9, 10]
    reasons = dict(bad.reports)
    assert "unknown coin 'BTC-EUR'" in reasons[5] and "not a number" in reasons[6]
    assert "`ts`" in reasons[7] and "`size` is -2.0" in reasons[9]
    assert "columns" in reasons[10]


def test_whole_file_problems_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no such file"):
        read_price_replay(tmp_path / "missing.jsonl", pairs=PAIRS, on_bad_line=BadLines())
    with pytest.raises(ReplayError, match="cannot tell the format"):
        read_price_replay(tmp_path / "prices.txt", pairs=PAIRS, on_bad_line=BadLines())
    path = tmp_path / "p.csv"
    path.write_text("timestamp,coin,price\n2024-01-01T10:00:00Z,BTC,1\n", encoding="utf-8")
    with pytest.raises(ReplayError, match=r"no column 'ts' for `ts`.*--column ts=<column>"):
        read_price_replay(path, pairs=PAIRS, on_bad_line=BadLines())
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert list(read_price_replay(empty, pairs=PAIRS, on_bad_line=BadLines())) == []


def test_a_source_paced_by_the_prices_own_times(tmp_path: Path) -> None:
    stamps = [(T0 + timedelta(seconds=s)).isoformat() for s in (0, 10, 10, 30)]
    lines = [f'{{"coin":"BTC","ts":"{t}","price":{i + 1}}}'.encode() for i, t in enumerate(stamps)]
    path = write(tmp_path / "p.jsonl", lines)
    fast = price_replay_source(path, pairs=PAIRS, on_bad_line=BadLines())
    assert [t.price for t in fast.read(10)] == [1.0, 2.0, 3.0, 4.0]  # unpaced: all at once
    assert fast.read(10) == []

    stop = StopSignal()
    started = datetime.now(UTC)
    paced = price_replay_source(path, pairs=PAIRS, on_bad_line=BadLines(), speed=100, stop=stop)
    got = [tick for _ in range(4) for tick in paced.read(10)]  # paced: one at a time
    assert [t.price for t in got] == [1.0, 2.0, 3.0, 4.0]
    assert datetime.now(UTC) - started >= timedelta(seconds=0.29)  # 30 s of file at speed 100
    assert got[-1].ts == T0 + timedelta(seconds=30)  # original times kept

    slow = price_replay_source(path, pairs=PAIRS, on_bad_line=BadLines(), speed=0.001, stop=stop)
    assert slow.read(1)[0].price == 1.0
    stop.set("SIGINT")
    assert slow.read(1) == []  # a stop ends the wait for the next price at once


def test_many_prices_fast(tmp_path: Path) -> None:
    lines = [
        f'{{"coin":"ETH","ts":"2024-01-01T10:00:00Z","price":{2000 + i % 100}}}'.encode()
        for i in range(20_000)
    ]
    source = price_replay_source(write(tmp_path / "p.jsonl", lines), pairs=PAIRS,
                                 on_bad_line=BadLines())  # fmt: skip
    got = list(itertools.chain.from_iterable(iter(lambda: source.read(2000), [])))
    assert len(got) == 20_000
