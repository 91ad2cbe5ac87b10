"""Shared pytest fixtures."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import NoidaKafka


@pytest.fixture
def kafka_broker() -> Iterator[NoidaKafka]:
    """A real noida-db Kafka broker on a free loopback port, fresh data dir, stopped after."""
    broker = NoidaKafka()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
