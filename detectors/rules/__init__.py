"""Rules: pure functions of (parameters, zone, tracks, now) -> the conditions that hold now.

No I/O, no clocks of their own, no frame counts: every time is in seconds.
"""
from detectors.rules.condition import Condition

__all__ = ["Condition"]
