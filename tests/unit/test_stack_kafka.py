"""The local Kafka broker's cluster id is one the storage tool accepts."""

from __future__ import annotations

import base64
import uuid

import pytest

from cryptosent.stack import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first draw encodes to an id starting with '-' (byte 0xF8 -> '-' in URL-safe
    # base64); the storage tool would read it as an option. The second draw is used.
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=bytes(range(16)))
    draws = iter([dashed, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    cluster_id = kafka._kafka_uuid()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_cluster_ids_are_random_and_22_characters() -> None:
    ids = {kafka._kafka_uuid() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
