"""Second-stage readers: a model run on the crop of one detection, adding attributes to its track.

A reader takes a BGR crop (a vehicle, a bin, a manhole cover) and returns a `Reading` or None.
Two kinds ship: plate readers (`PlateReader`: text and colour of a licence plate, with the plate's
own crop as evidence) and state classifiers (an ONNX classifier: `full` / `empty`, `present` /
`missing`). `stage.ReaderStage` decides which tracks are read and when (once per stationary track,
best of a few frames) and hands the best reading to the track's events.

Any object with the `Reader` or `PlateReader` shape can replace the shipped engines: a city's own
plate model is a class with `read(image) -> list[PlateRead]`, named in the config by import path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

PlateColour = Literal["blue", "yellow", "green", "yellow-two-row", "white", "black", "unknown"]


@dataclass(frozen=True)
class PlateRead:
    """One plate found in an image."""

    text: str
    colour: PlateColour
    confidence: float  # the recogniser's: product of the per-character probabilities
    corners: np.ndarray  # 4x2 float, pixel corners in the image read (TL, TR, BR, BL)
    crop: np.ndarray  # the rectified plate, BGR
    rows: int = 1  # 2: a two-row plate (large yellow plates on trucks and buses)


@runtime_checkable
class PlateReader(Protocol):
    """Reads licence plates on an image (a vehicle's crop), best first."""

    name: str

    def read(self, image: np.ndarray) -> list[PlateRead]: ...


@dataclass(frozen=True)
class Reading:
    """What a reader says about one crop: `kind` says how events carry it."""

    kind: Literal["plate", "state"]
    reader: str  # the reader's configured name (`plate`, or the classifier's `attribute`)
    value: str  # plate text, or the state's label
    confidence: float
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. {"colour": "blue"}
    crop: np.ndarray | None = None  # evidence: the plate crop (plates only)
    at: float = 0.0  # the rules' clock when it was read

    def better_than(self, other: Reading | None) -> bool:
        return other is None or self.confidence > other.confidence


@runtime_checkable
class Reader(Protocol):
    """Reads one crop; None when there is nothing to read (no plate on the vehicle)."""

    name: str

    def read(self, image: np.ndarray) -> Reading | None: ...
