"""Replay prices from a file (JSON Lines or CSV, optionally gzip-compressed), like the tweet replay.

JSON Lines: one price message per line, exactly the `prices` topic's contract (``coin``, ``ts``,
``price``, optional ``size`` and ``source``), checked by `model.decode_price`. CSV: a header and
the columns ``coin``, ``ts``, ``price`` (required), ``size`` and ``source`` (when present);
another header is mapped with ``columns`` (``{"ts": "timestamp"}``). A CSV's ``coin`` may also be
an exchange pair (``BTC-USD``, ``XBTUSD``, ``BTCUSDT``): it is mapped like the live feeds map
them; timestamps are read as leniently as the tweet replay reads them (RFC 3339, epoch seconds or
milliseconds). Every bad line is reported as ``on_bad_line(line_number, reason)`` and skipped.

Replayed prices keep their original ``ts``, so a historical file lands on its own minutes; a
price without a ``source`` gets ``replay``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptosent.model import InvalidPrice, PriceTick, decode_price, encode_price
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import IteratorSource
from cryptosent.sources.exchanges.pairs import PairMap
from cryptosent.sources.replay import (
    BadLineHandler,
    ReplayError,
    ReplayFormat,
    csv_header,
    csv_records,
    infer_format,
    json_lines,
    paced,
    parse_timestamp,
)

SOURCE_NAME: Final = "replay"
DEFAULT_COLUMNS: Final[Mapping[str, str]] = {
    "coin": "coin",
    "ts": "ts",
    "price": "price",
    "size": "size",
    "source": "source",
}
"""Price field -> CSV column; ``coin``, ``ts`` and ``price`` are required."""
_REQUIRED: Final = ("coin", "ts", "price")


def read_price_replay(
    path: str | Path,
    *,
    pairs: PairMap,
    fmt: ReplayFormat | None = None,
    columns: Mapping[str, str] | None = None,
    on_bad_line: BadLineHandler,
) -> Iterator[PriceTick]:
    """Yield the prices of a JSON Lines or CSV file (gzip allowed), skipping bad lines.

    ``pairs`` holds the coin catalogue (its canonical tickers, and the pairs a CSV may name).
    Raises ``ReplayError`` only for whole-file problems (unknown format, missing CSV column)."""
    file_path = Path(path)
    kind = fmt or infer_format(file_path)
    if not file_path.is_file():
        raise ReplayError(f"{file_path}: no such file")
    if kind == "jsonl":
        return _read_jsonl(file_path, pairs, on_bad_line)
    if kind == "csv":
        mapping = {**DEFAULT_COLUMNS, **(columns or {})}
        positions = _header_positions(file_path, mapping)
        return _read_csv(file_path, pairs, positions, on_bad_line)
    raise ReplayError(f"unknown replay format {kind!r}: use 'jsonl' or 'csv'")


def price_replay_source(
    path: str | Path,
    *,
    pairs: PairMap,
    on_bad_line: BadLineHandler,
    fmt: ReplayFormat | None = None,
    columns: Mapping[str, str] | None = None,
    speed: float | None = None,
    rate_per_s: float | None = None,
    stop: StopSignal | None = None,
) -> IteratorSource[PriceTick]:
    """A price file as a source: `read_price_replay`, then paced by the prices' own ``ts``
    (``speed``) or evenly (``rate_per_s``), its waits ending at the stop; a paced file is sent
    price by price."""
    ticks = read_price_replay(path, pairs=pairs, fmt=fmt, columns=columns, on_bad_line=on_bad_line)
    stream = paced(ticks, speed=speed, rate_per_s=rate_per_s, stop=stop, at=_ts)
    live = speed is not None or rate_per_s is not None
    return IteratorSource(SOURCE_NAME, stream, max_batch=1 if live else None)


def _ts(tick: PriceTick) -> datetime:
    return tick.ts


class _Catalogue:
    """`decode_price`'s known coins, from a PairMap."""

    def __init__(self, pairs: PairMap) -> None:
        self._pairs = pairs

    def __contains__(self, coin: object) -> bool:
        return isinstance(coin, str) and self._pairs.is_coin(coin)


def _read_jsonl(path: Path, pairs: PairMap, report: BadLineHandler) -> Iterator[PriceTick]:
    known = _Catalogue(pairs)
    for line_number, line in json_lines(path, report):
        try:
            tick = decode_price(line, known)
        except InvalidPrice as err:
            report(line_number, str(err))
            continue
        if tick.source is None:
            tick.source = SOURCE_NAME
        yield tick


def _header_positions(path: Path, mapping: Mapping[str, str]) -> dict[str, int] | None:
    header = csv_header(path)
    if header is None:
        return None
    index = {name.strip(): i for i, name in enumerate(header)}
    positions: dict[str, int] = {}
    for field, column in mapping.items():
        if column in index:
            positions[field] = index[column]
        elif field in _REQUIRED:
            raise ReplayError(
                f"{path}: no column {column!r} for `{field}` in the CSV header "
                f"({', '.join(header)}); map it with --column {field}=<column>"
            )
    return positions


def _read_csv(
    path: Path, pairs: PairMap, positions: dict[str, int] | None, report: BadLineHandler
) -> Iterator[PriceTick]:
    if positions is None:
        return
    known = _Catalogue(pairs)
    records = csv_records(path, report)
    next(records, None)  # the header, already checked
    for line_number, row in records:
        try:
            tick = _row_to_tick(row, positions, pairs)
            # the contract decides, exactly as the processor will
            yield decode_price(encode_price(tick), known)
        except (ValueError, IndexError) as err:  # InvalidPrice is a ValueError
            report(line_number, str(err))


def _row_to_tick(row: list[str], positions: Mapping[str, int], pairs: PairMap) -> PriceTick:
    def cell(field: str) -> str | None:
        position = positions.get(field)
        if position is None:
            return None
        if position >= len(row):
            raise ValueError(f"row has {len(row)} columns, `{field}` is column {position + 1}")
        return row[position].strip()

    raw_coin = cell("coin") or ""
    coin = raw_coin.upper() if pairs.is_coin(raw_coin.upper()) else pairs.coin_of(raw_coin)
    if coin is None:
        raise ValueError(f"unknown coin {raw_coin!r} (not a ticker of the coin catalogue)")
    try:
        ts = parse_timestamp(cell("ts") or "")
    except ValueError as err:
        raise ValueError(f"`ts`: {err}") from None
    price = _number(cell("price"), "price")
    size_text = cell("size")
    size = _number(size_text, "size") if size_text else None
    if price is None:
        raise ValueError("`price` is empty")
    return PriceTick(coin=coin, ts=ts, price=price, size=size, source=cell("source") or SOURCE_NAME)


def _number(text: str | None, field: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"`{field}` is not a number: {text!r}") from None
