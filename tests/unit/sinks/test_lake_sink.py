"""The lake sink without servers: which failures are retried and which stop the processor, the
buffer dropping lost partitions, and the flush trigger."""

from __future__ import annotations

import errno
from datetime import UTC, datetime

import pytest

from cryptosent.analysis.sentiment import get_analyzer
from cryptosent.batch import ScoredBatch
from cryptosent.model import Tweet
from cryptosent.processor.transform import score_tweets
from cryptosent.sinks.lake import LakeBuffer, LakeError, LakeUnavailable, lake_failure, render

NOW = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)


def batch(rows: list[tuple[int, int]]) -> ScoredBatch:
    """A scored batch of one tweet per (partition, offset)."""
    tweets = [Tweet(f"p{p}-{o}", "$BTC up", NOW) for p, o in rows]
    table = score_tweets(
        tweets, [p for p, _ in rows], [o for _, o in rows],
        get_analyzer("crypto"), get_analyzer("vader"),
    )  # fmt: skip
    ranges: dict[int, tuple[int, int]] = {}
    for p, o in rows:
        ranges[p] = (ranges.get(p, (o, o))[0], o)
    return ScoredBatch(table, [f"raw {p}-{o}".encode() for p, o in rows], ranges)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), LakeUnavailable),
        (OSError(errno.EFBIG, "File too large"), LakeUnavailable),
        (OSError(errno.ENOTDIR, "Not a directory"), LakeError),
        (PermissionError(errno.EACCES, "Permission denied"), LakeError),
        (OSError(errno.EROFS, "Read-only file system"), LakeError),
        (OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7"),
         LakeUnavailable),
        (OSError("AWS Error SLOW_DOWN during PutObject operation"), LakeUnavailable),
        (OSError("AWS Error SIGNATURE_DOES_NOT_MATCH during PutObject operation: ..."), LakeError),
        (OSError("AWS Error NO_SUCH_BUCKET during CreateMultipartUpload operation"), LakeError),
        (OSError("AWS Error ACCESS_DENIED during PutObject operation"), LakeError),
        (OSError("AWS Error UNKNOWN (HTTP status 403) during HeadObject operation"), LakeError),
    ],
)  # fmt: skip
def test_a_failure_a_user_must_fix_is_fatal_the_rest_transient(
    error: OSError, kind: type[Exception]
) -> None:
    found = lake_failure(error, "lake write failed for s3://b/x")
    assert type(found) is kind
    assert str(found).startswith("lake write failed for s3://b/x: ")
    if kind is LakeUnavailable:
        assert found.service == "the lake"  # type: ignore[attr-defined]
    else:
        assert "CRYPTOSENT_LAKE_URL" in str(found) or "AWS_" in str(found)


def test_buffer_drops_the_rows_of_lost_partitions_only() -> None:
    buffer = LakeBuffer()
    buffer.add(batch([(0, 0), (1, 0), (0, 1)]))
    buffer.add(batch([(1, 1), (2, 5)]))
    buffer.discard([1])
    assert buffer.ranges == {0: (0, 1), 2: (5, 5)}
    assert buffer.rows == 3 and buffer.raw == [b"raw 0-0", b"raw 0-1", b"raw 2-5"]
    pending = render(buffer, "tweets")
    assert pending.rows == 3 and set(pending.ranges) == {0, 2}
    assert all("-p001-" not in key for key in pending.blobs)


def test_batch_since_and_without() -> None:
    whole = batch([(0, 3), (0, 4), (1, 7), (1, 8), (2, 1)])
    assert whole.since({}) is whole
    part = whole.since({0: 4, 1: 9})
    assert part.ranges == {0: (4, 4), 2: (1, 1)}
    assert part.table.column("id").to_pylist() == ["p0-4", "p2-1"]
    assert part.raw == [b"raw 0-4", b"raw 2-1"]
    rest = whole.without({0, 2})
    assert rest.ranges == {1: (7, 8)} and rest.size == 2


@pytest.mark.parametrize("compiled", [True, False])
def test_raw_json_lines_hold_one_message_a_line_whatever_whitespace_it_had(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from cryptosent.sinks import lake

    if compiled:
        assert lake._line_breaks is not lake._python_line_breaks  # the core is built here
    else:
        monkeypatch.setattr(lake, "_line_breaks", lake._python_line_breaks)
    plain = [b'{"id":"1","text":"gm"}', b'{"id":"2","text":"a\\nb"}']  # an escaped \n
    assert lake._lines(plain) == b'{"id":"1","text":"gm"}\n{"id":"2","text":"a\\nb"}\n'
    # pretty-printed messages: their line feeds and carriage returns are whitespace only
    pretty = [b'{\n  "id": "3",\r\n  "text": "x"\n}', b'{"id":"4",\r"text":"y"}', b"{}"]
    lines = lake._lines(plain + pretty).split(b"\n")
    assert lines[-1] == b"" and len(lines) == 6
    assert [json.loads(line) for line in lines[:-1]] == [json.loads(r) for r in plain + pretty]
    assert lake._line_breaks(b"a\nb\r\nc\r") == 4 and lake._line_breaks(b"") == 0
