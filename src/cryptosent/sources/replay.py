"""Replay tweets from a file (JSON Lines or CSV, optionally gzip-compressed), optionally paced.

``read_replay`` turns a file into tweets and reports every bad line through a callback instead of
stopping; ``paced`` spaces any stream of records out in time (original rhythm sped up, fixed rate,
or as fast as possible). Replayed tweets keep their original ``created_at`` so that per-minute
aggregates of a historical file land on the historical minutes; ``paced(..., restamp=True)``
stamps them with the current time instead, for live-dashboard demos. The file reading itself
(`open_binary`, `json_lines`, `csv_header`, `csv_records`) and `paced` are shared with the price
replay (`sources.price_replay`).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import operator
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

import msgspec

from cryptosent.errors import FatalError
from cryptosent.model import Author, InvalidTweet, Tweet, decode_tweet, encode_tweet, utc_now
from cryptosent.runtime import StopSignal
from cryptosent.sources.base import IteratorSource

if TYPE_CHECKING:
    import _csv

log = logging.getLogger(__name__)

ReplayFormat = Literal["jsonl", "csv"]
BadLineHandler = Callable[[int, str], None]
T = TypeVar("T")

SOURCE_NAME: Final = "replay"
"""``source`` given to replayed tweets that do not name one themselves."""

DEFAULT_COLUMNS: Final[Mapping[str, str | None]] = {
    "id": "id",
    "text": "text",
    "created_at": "created_at",
    "author": "author",
    "author_id": "author_id",
    "followers": "followers",
    "verified": "verified",
    "lang": "lang",
}
"""Tweet field -> CSV column. ``id``/``text``/``created_at`` are required (``id`` mapped to
``None`` means ids ``<file name>:<line>``); the others are used when the header has them."""

_REQUIRED_FIELDS: Final = ("text", "created_at")
_JSONL_SUFFIXES: Final = {".jsonl", ".ndjson", ".json"}
_GZIP_MAGIC: Final = b"\x1f\x8b"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
# surrogateescape turns undecodable bytes into lone surrogates; finding one means "not UTF-8"
_SURROGATE: Final = re.compile("[\udc80-\udcff]")
_EPOCH_NUMBER: Final = re.compile(r"[+-]?\d+(\.\d+)?")
# Above this an epoch number is taken as milliseconds (10^11 s is the year 5138).
_EPOCH_MS_THRESHOLD: Final = 10**11
_TRUE: Final = {"true", "1", "yes", "y", "t"}
_FALSE: Final = {"false", "0", "no", "n", "f", ""}


class ReplayError(FatalError, ValueError):
    """The file as a whole cannot be replayed (unknown format, missing CSV column)."""


def _log_bad_line(line_number: int, reason: str) -> None:
    log.warning("replay: skipping line %d: %s", line_number, reason)


def infer_format(path: Path) -> ReplayFormat:
    """The replay format from the file name: ``.jsonl``/``.ndjson``/``.json`` or ``.csv``,
    each optionally followed by ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    if last in _JSONL_SUFFIXES:
        return "jsonl"
    if last == ".csv":
        return "csv"
    raise ReplayError(
        f"cannot tell the format of {path.name!r} from its name: "
        "use .jsonl or .csv (optionally .gz), or pass the format explicitly"
    )


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is gzip (whatever its suffix)."""
    # Sniff the magic bytes rather than trust the suffix: a `.jsonl` that is really gzip works too.
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        # GzipFile is a binary stream; typeshed just does not declare it an IO[bytes].
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def parse_timestamp(value: str) -> datetime:
    """Parse a timestamp leniently into UTC.

    Accepts RFC 3339 / ISO 8601 (a missing offset means UTC, e.g. ``2024-01-01 10:00:00``), epoch
    seconds (milliseconds when above 10^11), and the classic Twitter format
    ``Wed Oct 10 20:19:24 +0000 2018``. Raises ``ValueError`` otherwise.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    if _EPOCH_NUMBER.fullmatch(text):
        number = float(text)
        if abs(number) >= _EPOCH_MS_THRESHOLD:
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch timestamp out of range: {text!r}") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            raise ValueError(f"unrecognised timestamp {text!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def read_replay(
    path: str | Path,
    *,
    fmt: ReplayFormat | None = None,
    columns: Mapping[str, str | None] | None = None,
    on_bad_line: BadLineHandler | None = None,
) -> Iterator[Tweet]:
    """Yield the tweets of a JSON Lines or CSV file (gzip allowed), skipping bad lines.

    Every skipped line is reported as ``on_bad_line(line_number, reason)`` (1-based physical line
    numbers; default: a log warning). ``columns`` overrides entries of ``DEFAULT_COLUMNS`` for CSV.
    Raises ``ReplayError`` only for whole-file problems (unknown format, required column missing).
    """
    file_path = Path(path)
    kind = fmt or infer_format(file_path)
    if not file_path.is_file():
        raise ReplayError(f"{file_path}: no such file")
    report = on_bad_line or _log_bad_line
    if kind == "jsonl":
        return _read_jsonl(file_path, report)
    if kind == "csv":
        mapping = {**DEFAULT_COLUMNS, **(columns or {})}
        # Check the header now, so a wrong column mapping fails here and not mid-ingest.
        _csv_header_positions(file_path, mapping)
        return _read_csv(file_path, mapping, report)
    raise ReplayError(f"unknown replay format {kind!r}: use 'jsonl' or 'csv'")


def replay_source(
    path: str | Path,
    *,
    fmt: ReplayFormat | None = None,
    columns: Mapping[str, str | None] | None = None,
    on_bad_line: BadLineHandler | None = None,
    speed: float | None = None,
    rate_per_s: float | None = None,
    restamp: bool = False,
    stop: StopSignal | None = None,
) -> IteratorSource:
    """A file as a source: `read_replay` then `paced`; a paced file is sent tweet by tweet, and
    its waits end at the stop (Ctrl-C, SIGTERM, ``--duration``)."""
    tweets = read_replay(path, fmt=fmt, columns=columns, on_bad_line=on_bad_line)
    stream = paced(tweets, speed=speed, rate_per_s=rate_per_s, restamp=restamp, stop=stop)
    live = speed is not None or rate_per_s is not None
    return IteratorSource(SOURCE_NAME, stream, max_batch=1 if live else None)


def json_lines(path: Path, report: BadLineHandler) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every non-blank line of a JSON Lines file (gzip or not), without
    its line end and the UTF-8 BOM; a truncated or corrupt gzip member is reported where it broke
    and ends the lines."""
    line_number = 0
    with open_binary(path) as stream:
        try:
            for line_number, raw_line in enumerate(stream, start=1):
                line = raw_line.rstrip(b"\r\n")
                if line_number == 1 and line.startswith(_UTF8_BOM):
                    line = line[len(_UTF8_BOM) :]
                if not line.strip():
                    continue  # blank lines (often a trailing one) are not data
                yield line_number, line
        except (EOFError, OSError, zlib.error) as err:
            # A truncated or corrupt gzip member: report where it broke and stop cleanly.
            report(line_number + 1, f"unreadable from here on: {err}")


def _read_jsonl(path: Path, report: BadLineHandler) -> Iterator[Tweet]:
    for line_number, line in json_lines(path, report):
        try:
            tweet = decode_tweet(line)
        except InvalidTweet as err:
            report(line_number, str(err))
            continue
        if tweet.source is None:
            tweet.source = SOURCE_NAME
        yield tweet


def _csv_reader(binary: IO[bytes]) -> _csv.Reader:
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return csv.reader(text)


def csv_header(path: Path) -> list[str] | None:
    """The header of a CSV file (gzip or not), ``None`` for an empty file; ReplayError if it
    cannot be read."""
    with open_binary(path) as binary:
        reader = _csv_reader(binary)
        try:
            return next(reader)
        except StopIteration:
            return None
        except (csv.Error, EOFError, OSError, zlib.error) as err:
            raise ReplayError(f"{path}: cannot read the CSV header: {err}") from None


def csv_records(path: Path, report: BadLineHandler) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of every record of a CSV file (gzip or not), the header first.
    Blank records are skipped; a record the csv module cannot parse, or with bytes that are not
    UTF-8, is reported and skipped; a truncated gzip member ends the records where it broke."""
    with open_binary(path) as binary:
        reader = _csv_reader(binary)
        previous_end = 0
        while True:
            start = previous_end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                report(start, f"CSV: {err}")
                if reader.line_num == previous_end:
                    return  # the reader cannot move past this point
                previous_end = reader.line_num
                continue
            except (EOFError, OSError, zlib.error) as err:
                report(start, f"unreadable from here on: {err}")
                return
            previous_end = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if any(_SURROGATE.search(cell) for cell in row):
                report(start, "not UTF-8")
                continue
            yield start, row


def _csv_header_positions(path: Path, mapping: Mapping[str, str | None]) -> dict[str, int] | None:
    """Column positions from the header, ``None`` for an empty file; ReplayError if unusable."""
    header = csv_header(path)
    return None if header is None else _column_positions(path, header, mapping)


def _read_csv(
    path: Path, mapping: Mapping[str, str | None], report: BadLineHandler
) -> Iterator[Tweet]:
    positions = _csv_header_positions(path, mapping)
    if positions is None:
        return
    synthetic_ids = mapping.get("id") is None
    records = csv_records(path, report)
    next(records, None)  # the header, already checked
    for start, row in records:
        try:
            tweet = _row_to_tweet(row, positions, synthetic_ids, f"{path.name}:{start}")
        except (ValueError, IndexError) as err:
            report(start, str(err))
            continue
        yield tweet


def _column_positions(
    path: Path, header: list[str], mapping: Mapping[str, str | None]
) -> dict[str, int]:
    index = {name.strip(): i for i, name in enumerate(header)}
    positions: dict[str, int] = {}
    required = list(_REQUIRED_FIELDS)
    if mapping.get("id") is not None:
        required.append("id")
    for field_name, column in mapping.items():
        if column is None:
            continue
        if column in index:
            positions[field_name] = index[column]
        elif field_name in required:
            raise ReplayError(
                f"{path}: no column {column!r} for `{field_name}` in the CSV header "
                f"({', '.join(header)}); map it with columns={{{field_name!r}: '<column>'}}"
            )
    return positions


def _row_to_tweet(
    row: list[str], positions: Mapping[str, int], synthetic_ids: bool, synthetic_id: str
) -> Tweet:
    def cell(field_name: str) -> str | None:
        position = positions.get(field_name)
        if position is None:
            return None
        if position >= len(row):
            raise ValueError(f"row has {len(row)} columns, `{field_name}` is column {position + 1}")
        return row[position]

    tweet_id = synthetic_id if synthetic_ids else (cell("id") or "").strip()
    if not tweet_id:
        raise ValueError("`id` is empty")
    created_raw = cell("created_at")
    try:
        created_at = parse_timestamp(created_raw or "")
    except ValueError as err:
        raise ValueError(f"`created_at`: {err}") from None
    tweet = Tweet(
        id=tweet_id,
        text=cell("text") or "",
        created_at=created_at,
        author=_author(cell("author_id"), cell("author"), cell("followers"), cell("verified")),
        lang=(cell("lang") or "").strip() or None,
        source=SOURCE_NAME,
    )
    # Run the built tweet through the wire contract so the CSV path rejects exactly what the
    # processor would (size limit, NUL characters).
    try:
        decode_tweet(encode_tweet(tweet))
    except InvalidTweet as err:
        raise ValueError(str(err)) from None
    return tweet


def _author(
    author_id: str | None, username: str | None, followers: str | None, verified: str | None
) -> Author | None:
    author_id = (author_id or "").strip() or None
    username = (username or "").strip() or None
    followers_count: int | None = None
    if followers and followers.strip():
        try:
            followers_count = int(float(followers))
        except ValueError:
            raise ValueError(f"`followers` is not a number: {followers!r}") from None
    is_verified: bool | None = None
    if verified is not None and verified.strip().lower() in _TRUE:
        is_verified = True
    elif verified is not None and verified.strip() and verified.strip().lower() in _FALSE:
        is_verified = False
    if author_id is None and username is None and followers_count is None and is_verified is None:
        return None
    return Author(id=author_id, username=username, followers=followers_count, verified=is_verified)


def paced(
    records: Iterable[T],
    *,
    speed: float | None = None,
    rate_per_s: float | None = None,
    max_gap_s: float | None = None,
    restamp: bool = False,
    stop: StopSignal | None = None,
    at: Callable[[T], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utc_now,
) -> Iterator[T]:
    """Yield ``records`` (tweets unless ``at`` says otherwise) spaced out in time.

    ``speed=X`` reproduces the original gaps between the records' times (``at(record)``; a
    tweet's ``created_at`` by default) divided by X (a time going backwards counts as no gap);
    ``rate_per_s=R`` spaces records evenly at R per second; neither means as fast as possible.
    ``max_gap_s`` caps any single (scaled) gap, for files with holes. ``restamp=True`` sets each
    tweet's ``created_at`` to ``now()`` as it is yielded. With ``stop``, the waits are the
    stop's: a stop ends the stream at once.
    """
    if speed is not None and rate_per_s is not None:
        raise ValueError("pace by `speed` or by `rate_per_s`, not both")
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
    time_of: Callable[[T], datetime] = at if at is not None else operator.attrgetter("created_at")
    start: float | None = None
    # Seconds after `start` at which the next record is due. Scheduling against a fixed start
    # (rather than sleeping each gap) keeps time spent by the consumer from accumulating as drift.
    due_offset = 0.0
    latest_event: datetime | None = None
    for record in records:
        if start is None:
            start = clock()
            latest_event = time_of(record)
        elif speed is not None:
            assert latest_event is not None
            event = time_of(record)
            gap = max(timedelta(0), event - latest_event).total_seconds() / speed
            latest_event = max(latest_event, event)
            due_offset += gap if max_gap_s is None else min(gap, max_gap_s)
        elif rate_per_s is not None:
            due_offset += 1.0 / rate_per_s
        if speed is not None or rate_per_s is not None:
            delay = start + due_offset - clock()
            if delay > 0:
                if stop is None:
                    sleep(delay)
                elif stop.wait(delay):
                    return
        if restamp:
            record = cast(Any, msgspec.structs.replace(cast(Any, record), created_at=now()))
        yield record
