"""The error kinds: every error class cryptosent defines says what to do with it, and nothing but
config.py reads the environment."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import cryptosent
from cryptosent.errors import CryptosentError, FatalError, TransientError, one_line

SRC = Path(cryptosent.__file__).parent
# handled where raised: not retried, not shown to a user as a failure
OUTCOMES = {
    "InvalidTweet", "InvalidPrice", "StaleBatch", "MalformedMessage", "Reconnect",
    "StoppedConnecting",
}  # fmt: skip


def error_classes() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages([str(SRC)], prefix="cryptosent."):
        name = module.name
        if name.startswith(("cryptosent.analysis", "cryptosent.training")) or name.endswith(
            ("__main__", "dashboard.app", "bench.peers.quix_job")
        ):
            # others' packages; app.py renders a page when imported; the Quix job runs in its
            # own venv (quixstreams, psycopg2)
            continue
        loaded = importlib.import_module(name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found.append(cls)
    return found


def test_every_error_class_derives_from_a_kind() -> None:
    classes = error_classes()
    assert len(classes) >= 15
    kindless = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in classes
        if cls not in (CryptosentError, TransientError, FatalError)
        and not issubclass(cls, (TransientError, FatalError))
        and not (issubclass(cls, CryptosentError) and cls.__name__ in OUTCOMES)
    ]
    assert kindless == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("cryptosent.kafka.KafkaUnavailable", TransientError),
        ("cryptosent.kafka.MissingTopic", FatalError),
        ("cryptosent.runtime.ForeignRaise", FatalError),
        ("cryptosent.sinks.database.DatabaseUnavailable", TransientError),
        ("cryptosent.sinks.lake.LakeUnavailable", TransientError),
        ("cryptosent.sinks.lake.LakeError", FatalError),
        ("cryptosent.stack.process.StackError", FatalError),
        ("cryptosent.sources.x_api.XStreamError", FatalError),
        ("cryptosent.sources.bluesky.JetstreamError", FatalError),
        ("cryptosent.sources.replay.ReplayError", FatalError),
        ("cryptosent.dashboard.data.Unavailable", TransientError),
    ],
)
def test_kinds(name: str, kind: type[CryptosentError]) -> None:
    module, _, cls = name.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), cls), kind)


def test_one_line() -> None:
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(ValueError("")) == "ValueError"


def test_nothing_outside_config_reads_the_environment() -> None:
    readers = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "config.py" and path.parent == SRC:
            continue
        if path.is_relative_to(SRC / "analysis") or path.is_relative_to(SRC / "training"):
            continue  # others' packages, checked by their own tests
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                readers.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert readers == []
