"""Hostile and broken messages, produced by kcat (a client outside the project), one per kind.

Each either lands in the DLQ with its reason or is stored with its text intact (PostgreSQL's
`tweets.text` equal to what was sent, the raw lake layer holding the exact bytes); valid
messages around them are all stored and the processor keeps going.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Pipeline
from faults_support import lake_counts

T = "2026-11-23T10:00:00Z"


def tweet(id_: str, text: str, created_at: str = T, **extra: object) -> bytes:
    payload = {"id": id_, "text": text, "created_at": created_at, **extra}
    return json.dumps(payload, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Case:
    kind: str
    value: bytes | None  # None: a tombstone (no value at all)
    dlq: str | None = None  # expected reason (substring); None: stored
    key: bytes | None = None


MB = 1_000_000
BAD = [
    Case("not JSON", b"hello, I am not JSON", "not JSON"),
    Case("truncated JSON", b'{"id":"t1","text":"abc', "not JSON"),
    Case("invalid UTF-8", b'{"id":"u1","text":"caf\xe9 \xff","created_at":"' + T.encode() + b'"}',
         "not UTF-8"),
    Case("lone surrogate escape", tweet("s1", "x").replace(b'"x"', b'"\\ud800"'), "not JSON"),
    Case("id is a number", b'{"id":7,"text":"t","created_at":"' + T.encode() + b'"}', "$.id"),
    Case("text is an object", b'{"id":"o1","text":{"a":1},"created_at":"' + T.encode() + b'"}',
         "$.text"),
    Case("missing id", b'{"text":"t","created_at":"' + T.encode() + b'"}', "`id`"),
    Case("empty id", tweet("", "t"), "`id` is empty"),
    Case("missing created_at", b'{"id":"c1","text":"t"}', "`created_at`"),
    Case("created_at not RFC 3339", tweet("c2", "t", "next tuesday"), "$.created_at"),
    Case("created_at without offset", tweet("c3", "t", "2026-11-23T10:00:00"), "UTC offset"),
    Case("created_at in year 9999", tweet("f1", "$BTC in 9999", "9999-12-31T23:59:59Z"),
         "created_at in the future"),
    Case("created_at before year 1 in UTC", tweet("c4", "t", "0001-01-01T00:00:00+01:00"),
         "out of range"),
    Case("NUL byte in the JSON", tweet("n1", "t") + b"\x00", "not JSON"),
    Case("NUL character in text", tweet("n2", "a\x00b"), "NUL"),
    Case("1 MB message", b'{"id":"big","text":"' + b"x" * (MB - 60) + b'","created_at":"'
         + T.encode() + b'"}', "over the 65536-byte limit"),
    Case("just over 64 KiB", tweet("big2", "y" * 65_500), "over the 65536-byte limit"),
    Case("deeply nested extra field", b'{"id":"d1","text":"t","created_at":"' + T.encode()
         + b'","x":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply"),
    Case("huge number", tweet("h1", "t", author={"followers": 10**30}), "$.author.followers"),
    Case("huge float", b'{"id":"h2","text":"t","created_at":"' + T.encode()
         + b'","metrics":{"likes":1e999}}', "$.metrics.likes"),
    Case("top-level array", b"[1,2,3]", "Expected `object`"),
    Case("JSON null", b"null", "Expected `object`"),
    Case("whitespace only", b" \t ", "not JSON"),
    Case("byte order mark", b"\xef\xbb\xbf" + tweet("bom", "t"), "not JSON"),
    Case("empty message", b"", "not JSON"),
    Case("tombstone (no value)", None, "no value"),
]  # fmt: skip

SQL = "'); DROP TABLE tweets; -- \\' \" $$ ; select pg_sleep(10); E'\\x00'"
STORED = [
    Case("emoji only", tweet("e1", "🚀🌕💎🙌📈📉🩸❤️👍🏽👨‍👩‍👧‍👦")),
    Case("right-to-left text", tweet("r1", "بيتكوين إلى القمر 🚀 ‮$BTC‬ עולה")),
    Case("zero-width characters", tweet("z1", "$B\u200bTC \u200d\ufeff\u2060 moon\u200c")),
    Case("SQL injection", tweet("q1", SQL)),
    Case("SQL injection in the id", tweet("q2'); drop table tweets;--", "id is hostile")),
    Case("HTML and script", tweet("x1", '<script>alert(1)</script><img src=x onerror="a()">')),
    Case("markdown image and links", tweet("m1", "![pwn](http://evil.test/x.png) "
                                             "[click](javascript:alert(1)) **$ETH** <b>")),
    Case("control characters", tweet("k1", "".join(chr(c) for c in range(1, 32))
                                     + "\x7f\x85\u2028\u2029 $BTC")),
    Case("CSV and COPY breakers", tweet("v1", 'a"b,c\nd\r\n\\.\n\\N\t\\\\ "" ,')),
    Case("COPY end marker alone", tweet("v2", "\\.")),
    Case("empty text", tweet("v3", "")),
    Case("far-past timestamp", tweet("f2", "$BTC in year 1", "0001-01-01T00:00:00Z")),
    Case("offset far from UTC", tweet("f3", "$SOL", "2026-11-23T23:30:00+14:00")),
    Case("key that is not the id", tweet("k2", "key says otherwise"), key=b"not-the-id"),
    Case("no key", tweet("k3", "no key at all")),
    Case("duplicate id, first text", tweet("dup", "first text wins $BTC")),
    Case("duplicate id, other text", tweet("dup", "second text, same id $ETH")),
    Case("long text under the limit", tweet("l1", "🚀 moon " * 6_000)),
    Case("unknown fields and big numbers kept raw", tweet("u2", "x", extra={"n": 10**40},
                                                          lang="xx-weird")),
    Case("pretty-printed JSON", json.dumps({"id": "p1", "text": "line\nbreaks", "created_at": T},
                                           indent=2).encode()),
    Case("escaped unicode", b'{"id":"esc1","text":"\\u00e9\\ud83d\\ude80\\/","created_at":"'
         + T.encode() + b'"}'),
]  # fmt: skip

CORPUS = BAD + STORED


def test_the_corpus_has_at_least_25_kinds() -> None:
    assert len({case.kind for case in CORPUS}) == len(CORPUS) >= 25


def produce(p: Pipeline, cases: list[Case], folder: Path) -> None:
    """One kcat call per message on partition 0 (a file argument is one message, any bytes)."""
    folder.mkdir()
    for number, case in enumerate(cases):
        argv = ["kcat", "-b", p.settings.kafka_bootstrap, "-P", "-t", p.topic, "-p", "0",
                "-X", "message.max.bytes=1048576"]  # fmt: skip
        if case.key is not None:
            argv += ["-k", case.key.decode()]
        elif case.value is not None and case.kind != "no key":
            with contextlib.suppress(ValueError, KeyError, TypeError, RecursionError):
                id_ = json.loads(case.value)["id"]
                if isinstance(id_, str) and id_:
                    argv += ["-k", id_]
        if not case.value:
            # a key and nothing after the key delimiter: an empty value, or with -Z a null one
            # (kcat skips an empty file, so that cannot make an empty message)
            null = ["-Z"] if case.value is None else []
            subprocess.run([*argv, *null, "-K", "\t"], input=b"k\t\n", check=True, timeout=60)
            continue
        path = folder / f"{number:03d}.msg"
        path.write_bytes(case.value)
        subprocess.run([*argv, str(path)], check=True, timeout=60, capture_output=True)


def dlq_records(p: Pipeline) -> dict[int, tuple[dict[str, str], int]]:
    """source offset -> (headers, value length) of every dead letter."""
    out = subprocess.run(
        ["kcat", "-b", p.settings.kafka_bootstrap, "-C", "-t", f"{p.topic}.dlq",
         "-o", "beginning", "-e", "-q", "-J", "-X", "fetch.max.bytes=2000000"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    found = {}
    for line in out.stdout.splitlines():
        record = json.loads(line.decode(errors="replace"))
        headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
        size = len(record["payload"].encode()) if record["payload"] is not None else -1
        found[int(headers["source.offset"])] = (headers, size)
    return found


@pytest.mark.timeout(300)
def test_hostile_messages_go_to_the_dlq_or_are_stored_intact(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    # valid tweets around every hostile one: none of them may be lost
    cases: list[Case] = []
    for number, case in enumerate(CORPUS):
        cases += [Case(f"good {number}", tweet(f"good-{number}", f"$BTC fine {number}")), case]
    produce(p, cases, tmp_path / "corpus")
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr

    dead = dlq_records(p)
    expected_dead = {o: c for o, c in enumerate(cases) if c.dlq is not None}
    assert set(dead) == set(expected_dead)
    for offset, case in expected_dead.items():
        headers, size = dead[offset]
        assert case.dlq is not None
        assert case.dlq in headers["error"], (case.kind, headers["error"])
        assert headers["source.topic"] == p.topic and headers["source.partition"] == "0"
        if case.kind == "1 MB message":
            # too big to forward whole once headers are added: its head and its true size
            assert headers["truncated"] == str(len(case.value or b""))
            assert size == 512 * 1024

    # stored ones: PostgreSQL holds the text sent, character for character (first of a
    # duplicated id wins); lake: a Parquet row and a raw line per valid message
    valid = [c for c in cases if c.dlq is None]
    expected_text: dict[str, str] = {}
    for case in valid:
        assert case.value is not None
        message = json.loads(case.value)
        expected_text.setdefault(message["id"], message["text"])
    rows = dict(p.query("select id, text from tweets"))
    assert rows == expected_text
    stored_bytes = dict(p.query("select id, convert_to(text, 'UTF8') from tweets"))
    assert {i: bytes(b) for i, b in stored_bytes.items()} == {  # type: ignore[call-overload]
        i: t.encode() for i, t in expected_text.items()
    }
    assert p.coin_minute_mismatches() == 0
    parquet_rows, raw_lines, ids = lake_counts(p)
    assert parquet_rows == raw_lines == len(valid)
    assert ids == set(expected_text)
    raw = b"".join(gzip.decompress(p.read_object(k)) for k in p.lake_tables("raw"))
    for case in valid:
        assert case.value is not None
        line = case.value.replace(b"\r", b" ").replace(b"\n", b" ")
        assert line + b"\n" in raw, case.kind
    far = dict(p.query("select id, created_at::text from tweets where id in ('f1','f2','f3')"))
    assert far == {
        "f2": "0001-01-01 00:00:00+00",
        "f3": "2026-11-23 09:30:00+00",
    }

    # still running: a later good batch is stored by the next run from where it stopped
    later = [Case(f"after {n}", tweet(f"after-{n}", "$BTC still alive")) for n in range(5)]
    produce(p, later, tmp_path / "later")
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert p.scalar("select count(*) from tweets where id like 'after-%'") == 5


@pytest.mark.timeout(240)
def test_dashboard_shows_stored_hostile_texts_as_plain_text(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from streamlit.testing.v1 import AppTest

    from cryptosent.config import get_settings

    p = pipeline
    now = datetime.now(UTC).replace(microsecond=0)
    texts = {}
    for number, case in enumerate(c for c in STORED if c.value and "timestamp" not in c.kind):
        assert case.value is not None
        text = json.loads(case.value)["text"]
        stamp = (now - timedelta(seconds=number)).isoformat().replace("+00:00", "Z")
        texts[f"hostile-{number}"] = text
        cases = [Case(case.kind, tweet(f"hostile-{number}", text, stamp))]
        produce(p, cases, tmp_path / f"now-{number}")
    run = p.cli("process", "--until-idle")
    assert run.returncode == 0, run.stderr
    assert dict(p.query("select id, text from tweets")) == texts

    reader = p.settings.dashboard_dsn().rsplit("/", 1)[0] + "/" + p.database_url.rsplit("/", 1)[1]
    monkeypatch.setenv("CRYPTOSENT_DASHBOARD_DATABASE_URL", reader)
    get_settings.cache_clear()
    try:
        app = Path(__file__).resolve().parents[2] / "src/cryptosent/dashboard/app.py"
        at = AppTest.from_file(str(app), default_timeout=90).run()
    finally:
        get_settings.cache_clear()
    assert not at.exception, [e.value for e in at.exception]
    grids = [d.value for d in at.dataframe if "text" in d.value.columns]
    assert grids, "no grid with tweet texts"
    shown = set(grids[0]["text"])
    assert shown == set(texts.values())  # every text, unchanged, as a grid cell
    # and none went through markdown, HTML or any other rendering element
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    rendered += [t.value for t in at.text] + [str(h.value) for h in at.get("html")]
    for text in texts.values():
        marker = text.strip()[:12]
        if len(marker) >= 6:
            assert not any(marker in r for r in rendered), marker
