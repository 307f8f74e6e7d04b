"""The campaign stage of the processor: every scored batch gets its `spam` and `campaign_id`
flags from one `CampaignDetector`, and carries the revised flags of earlier tweets to the sinks
(PostgreSQL applies them in the batch's transaction, with the exact change of the aggregates).

Several processors share the partitions of a topic; a cluster must not depend on which of them
saw which post. So before each batch the detector first observes the posts its peers stored
since it last looked (`PeerPosts`, read back from PostgreSQL by the transaction that stored
them), and on start-up the stored posts of the last window: every member's detector sees every
post of the window, and campaign ids are named by a cluster's earliest post, whoever saw it.
Where a detector's verdict on a stored post differs from the stored flags, the batch carries a
revision (docs/campaigns.md, "Several processors").
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cryptosent.analysis.campaigns import (
    CampaignDetector,
    Flag,
    Post,
    PostColumns,
    post_columns_from_tweets,
)
from cryptosent.analysis.campaigns import (
    warm_up as warm_up_signer,
)
from cryptosent.batch import Ranges, Revision, ScoredBatch
from cryptosent.config import Settings
from cryptosent.runtime import Retry, StopSignal
from cryptosent.sinks.database import NO_JIT, Database

if TYPE_CHECKING:
    from cryptosent.processor.transform import Decoded

log = logging.getLogger(__name__)

# rows per observe() while catching up (bounds the detector's per-call arrays)
_CHUNK = 20_000
# a catch-up skips the rows of this processor's last batches (it observed them itself); older
# ones are read again only while a long transaction holds the snapshots' xmin back (no-ops)
_OWN_BATCHES = 4

_COLUMNS = """id, author_id, author_username, author_followers, author_verified, created_at,
       text, retweet_of, spam, campaign_id, stored_xid::text"""
_SNAPSHOT = "select pg_snapshot_xmin(pg_current_snapshot())::text"
_WINDOW = f"""
select {_COLUMNS} from tweets
where created_at >= (select max(created_at) from tweets) - make_interval(secs => %s)
order by stored_xid desc, kafka_partition desc, kafka_offset desc limit %s"""  # noqa: S608 - constant column list
_SINCE = f"""
select {_COLUMNS} from tweets
where stored_xid >= %s::xid8 and created_at >= coalesce(%s, '-infinity'::timestamptz)
  and not exists (select from unnest(%s::int[], %s::bigint[], %s::bigint[]) as own (p, lo, hi)
                  where kafka_partition = own.p and kafka_offset between own.lo and own.hi)
order by stored_xid, kafka_partition, kafka_offset"""  # noqa: S608 - constant column list


@dataclass(frozen=True)
class StoredPost:
    """A post as stored: the detector's view of it and the flags it was stored with."""

    post: Post
    spam: bool
    campaign_id: str | None
    batch: str = ""
    """The transaction that stored it (`tweets.stored_xid`): the batch it was observed in."""


def stored_post(row: Sequence[Any]) -> StoredPost:
    """A `tweets` row (columns of `_COLUMNS`) as the detector sees it (as `post_from_tweet`)."""
    tweet_id, author_id, username, followers, verified, created_at = row[:6]
    text, retweet_of, spam, campaign_id, batch = row[6:]
    assert isinstance(created_at, datetime)
    post = Post(
        id=str(tweet_id),
        author_id=str(author_id or username or f"?{tweet_id}"),
        created_at=created_at.timestamp(),
        text=str(text),
        followers=None if followers is None else int(followers),
        verified=bool(verified),
        retweet=retweet_of is not None,
    )
    campaign = None if campaign_id is None else str(campaign_id)
    return StoredPost(post, bool(spam), campaign, str(batch))


class PeerPosts:
    """The posts stored in PostgreSQL that a detector has not seen yet: first the last `window`
    seconds (at most `max_posts`), then, each time, what was committed since the last look.

    "Since" is by the storing transaction (`tweets.stored_xid`): every transaction not visible
    to the previous read's snapshot has an id at or above that snapshot's xmin, so nothing
    committed later is missed; rows read twice are no-ops for the detector."""

    def __init__(self, database: Database, window: float, max_posts: int) -> None:
        self.database = database
        self.window = window
        self.max_posts = max_posts
        self._cursor: str | None = None  # xmin of the last read's snapshot

    def read(self, newest: float, own: Ranges | None = None) -> list[StoredPost]:
        """Posts stored since the last call (the window's on the first), in the order they were
        stored (transaction, partition, offset); newest:
        the detector's newest post time (older ones than its window are not returned); own:
        offsets the detector observed itself (partition -> first, last), skipped."""
        own = own or {}
        with self.database.transaction() as conn:
            conn.execute("set transaction isolation level repeatable read")
            row = conn.execute(_SNAPSHOT).fetchone()
            cursor = str(row[0]) if row else "0"
            if self._cursor is None:
                rows = conn.execute(_WINDOW, [self.window, self.max_posts]).fetchall()
                rows.reverse()
            else:
                since = (
                    datetime.fromtimestamp(newest - self.window, UTC)
                    if math.isfinite(newest)
                    else None
                )
                parts = sorted(own)
                rows = conn.execute(
                    _SINCE,
                    [self._cursor, since, parts, [own[p][0] for p in parts],
                     [own[p][1] for p in parts]],
                ).fetchall()  # fmt: skip
        self._cursor = cursor
        return [stored_post(r) for r in rows]


class CampaignStage:
    """Wraps the scorer: flags each scored batch and attaches the revisions of earlier tweets."""

    def __init__(
        self,
        scorer: Callable[[Any], ScoredBatch],
        detector: CampaignDetector,
        peers: PeerPosts | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.scorer = scorer
        self.detector = detector
        self.peers = peers
        self.retry = retry
        self._newest = float("-inf")
        # offsets of the last batches, which a catch-up need not read back
        self._own: deque[Ranges] = deque(maxlen=_OWN_BATCHES)
        self._reader: ThreadPoolExecutor | None = None
        warm_up_signer()

    def __call__(self, decoded: Any) -> ScoredBatch:
        """Score the decoded batch (`transform.Decoded`), then flag it. The read of what the
        peers stored runs while the batch is scored (the scorer holds no database connection,
        and the read's inputs are the detector's state before this batch either way): the
        processor's thread waited 26 ms a batch of 20,000 for it, now 10 (300,000 mock tweets)."""
        reading = self._start_read()
        batch = self.scorer(decoded)
        revisions = self._observe_stored(reading.result() if reading is not None else [])
        # by columns: no Post and no Flag object per tweet on the hot path
        posts = post_columns(decoded)
        spam, campaign_ids, revised = self.detector.observe_columns(posts)
        self._own.append(dict(decoded.ranges))
        _merge(revisions, revised)
        if len(posts.ids):
            self._newest = max(self._newest, float(posts.created_at.max()))
        batch.table = with_flag_columns(batch.table, spam, campaign_ids)
        batch.revisions = list(revisions.values())
        return batch

    def catch_up(self) -> dict[str, Revision]:
        """Observe what the peers stored since the last batch; revisions where the detector
        disagrees with the stored flags (or revised them)."""
        return self._observe_stored(self._read())

    def _start_read(self) -> Future[list[StoredPost]] | None:
        if self.peers is None:
            return None
        if self._reader is None:
            # idle between batches: a read is in flight only inside __call__
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="campaign-peers")
        return self._reader.submit(self._read)

    def _read(self) -> list[StoredPost]:
        """What the peers stored since the last read (the posts of the last window at first)."""
        peers = self.peers
        if peers is None:
            return []
        own: Ranges = {}
        for ranges in self._own:
            for partition, (first, last) in ranges.items():
                lo, hi = own.get(partition, (first, last))
                own[partition] = (min(lo, first), max(hi, last))
        newest = self._newest
        if self.retry is not None:
            return self.retry("campaign peers", lambda: peers.read(newest, own))
        return peers.read(newest, own)

    def _observe_stored(self, stored: list[StoredPost]) -> dict[str, Revision]:
        revisions: dict[str, Revision] = {}
        for chunk in _chunks(stored, _CHUNK):
            observation = self.detector.observe([s.post for s in chunk])
            _merge(revisions, observation.revisions)
            for s, flag in zip(chunk, observation.flags, strict=True):
                if (flag.spam, flag.campaign_id) != (s.spam, s.campaign_id):
                    revisions[flag.id] = (flag.id, flag.spam, flag.campaign_id)
                else:
                    revisions.pop(flag.id, None)
            self._newest = max(self._newest, max(s.post.created_at for s in chunk))
        return revisions


def post_columns(decoded: Decoded) -> PostColumns:
    """The detector's view of a decoded batch (`post_columns_from_tweets` gives the same of
    `Tweet` objects)."""
    tweets = decoded.columns
    if tweets is None:
        return post_columns_from_tweets(decoded.tweets)
    arrays = tweets.arrays
    micros = arrays["created_at"].view(pa.int64()).to_numpy()
    if len(micros) and int(np.abs(micros).max()) >= 2**53:
        # beyond 2**53 a float64 does not hold every microsecond: Python's int division
        # rounds once, as `datetime.timestamp()` does
        seconds = np.array([m / 10**6 for m in micros.tolist()], np.float64)
    else:
        seconds = micros / 1e6
    return PostColumns(
        tweets.ids,
        tweets.authors,
        seconds,
        tweets.texts,
        arrays["author_followers"].fill_null(0).to_numpy(),
        arrays["author_verified"].fill_null(False).to_numpy(zero_copy_only=False),
        arrays["retweet_of"].is_valid().to_numpy(zero_copy_only=False),
    )


def with_flag_columns(
    table: pa.Table, spam: npt.NDArray[np.bool_], campaign_ids: Sequence[str | None]
) -> pa.Table:
    """The scored table with its `spam` and `campaign_id` columns set (row order)."""
    table = table.set_column(
        table.schema.get_field_index("spam"), "spam", pa.array(spam, pa.bool_())
    )
    campaign = pa.array(campaign_ids, pa.string())
    return table.set_column(table.schema.get_field_index("campaign_id"), "campaign_id", campaign)


def _merge(revisions: dict[str, Revision], flags: Sequence[Flag]) -> None:
    for flag in flags:
        revisions[flag.id] = (flag.id, flag.spam, flag.campaign_id)


def _chunks(items: list[StoredPost], size: int) -> Iterator[list[StoredPost]]:
    """The posts as the batches they were stored in (at most size each), in order: observed so,
    a detector's state follows the one that stored them as closely as the rows tell."""
    chunk: list[StoredPost] = []
    for item in items:
        if chunk and (item.batch != chunk[-1].batch or len(chunk) >= size):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def campaign_stage(
    settings: Settings,
    scorer: Callable[[Any], ScoredBatch],
    retry: Retry,
    stop: StopSignal,
    sinks: Sequence[str] | None = None,
) -> Callable[[Any], ScoredBatch]:
    """The scorer with the campaign stage around it (the scorer alone when detection is off);
    peers are read from PostgreSQL when the postgres sink is one of the sinks."""
    if not settings.campaign_detection:
        return scorer
    detector = CampaignDetector(window=settings.campaign_window_seconds)
    peers = None
    if sinks is None or "postgres" in sinks:
        database = Database(
            settings.database_dsn(), application_name="cryptosent-campaigns", stop=stop,
            setup=[NO_JIT],
        )  # fmt: skip
        peers = PeerPosts(database, detector.window, detector.max_posts)
    return CampaignStage(scorer, detector, peers, retry)
