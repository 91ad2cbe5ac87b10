"""The demo's sensor simulator writes each vendor's format; the service's decoder reads it back."""
import time

import pytest

from ingest.sensor_input_config import BUILTIN_PROFILES
from ingest.sensor_decode import Decoder, Reading
from tests.helpers import REPO
from xueliang.config import load_config
from ingest.sensor_simulator import BEHAVIOUR, payload


@pytest.mark.parametrize("kind", sorted(BEHAVIOUR))
def test_simulated_payload_decodes_to_the_same_values(kind):
    cfg = load_config(REPO / "configs" / "examples" / "sensors.yaml").sensors
    topic = {t.profile: t.pattern for t in cfg.topics}[kind].replace("{sensor_id}", "s1").replace("+", "demo")
    decoder = Decoder(cfg.topics, cfg.all_profiles(), {"s1": kind}, cfg.limits)
    now = time.time()
    values = {name: fn(77.0) for name, fn in BEHAVIOUR[kind].items()}
    reading = decoder.decode(topic, payload(BUILTIN_PROFILES[kind], values, now), now)
    assert isinstance(reading, Reading), reading
    for name, v in values.items():
        assert reading.values[name] == pytest.approx(v, abs=1e-3), name
    assert abs(reading.device_time - now) < 1.0
