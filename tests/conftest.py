"""Shared pytest fixtures."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import NoidaKafka, TansuKafka


def _running(server):
    """Start a real server for one test and stop it after, whatever the test did."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_broker() -> Iterator[NoidaKafka]:
    """A real noida-db Kafka broker on a free loopback port, fresh data dir, stopped after."""
    yield from _running(NoidaKafka())


@pytest.fixture
def tansu() -> Iterator[TansuKafka]:
    """A real Tansu broker on loopback: unlike noida-db it expires a silent member's session."""
    yield from _running(TansuKafka())


@pytest.fixture
def rtsp_server() -> Iterator["RtspServer"]:
    """A real GStreamer RTSP server on a free loopback port looping the bundled table clip at /cam
    (10 fps, a keyframe every second, like a camera with a 1 s GOP)."""
    from tests.helpers import REPO
    from tests.rtsp import RtspServer

    yield from _running(RtspServer({"cam": REPO / "configs" / "media" / "table-stays.mp4"}))


@pytest.fixture
def mosquitto(tmp_path):
    """A real Mosquitto broker: password auth, a TLS listener with a fresh CA, persistence on."""
    from tests.mosquitto import Mosquitto

    yield from _running(Mosquitto(tmp_path / "mosquitto"))
