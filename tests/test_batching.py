"""Inference batched across cameras gives what one-by-one inference gives: real model, real frames.

Frames come from the three fixture clips (three "cameras"), the model is the exported yolov8n
that the service runs. Each camera's frame goes alone through `YoloDetector.detect` (the static
batch-1 model) and, concurrently with the other cameras, through `InferenceBatcher` (the dynamic
batch model, one forward pass per round), and the boxes must agree.
"""
from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from detectors.batching import DetectRequest, InferenceBatcher
from detectors.detector_config import CustomModelConfig, CustomClassConfig, ModelConfig
from detectors.model_store import export
from detectors.yolo import YoloDetector
from ingest.video import iter_frames
from tests.helpers import DATA_DIR, FIXTURES

CLIPS = ["one-by-one-person-detection.mp4", "car-detection.mp4", "bottle-detection.mp4"]


@pytest.fixture(scope="module")
def detector() -> YoloDetector:
    return YoloDetector(ModelConfig(), DATA_DIR)


@pytest.fixture(scope="module")
def frames() -> dict[str, list[np.ndarray]]:
    """Four frames per clip, 2 s apart from 10 s on (someone sits at the table then): people, cars, bottles."""
    return {clip: [f.image for f in itertools.islice(iter_frames(clip, str(FIXTURES / clip), 0.5), 5, 9)]
            for clip in CLIPS}


def same(a, b) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
    np.testing.assert_allclose(a.conf, b.conf, atol=1e-4)
    np.testing.assert_array_equal(a.cls, b.cls)


async def cameras(batcher: InferenceBatcher, frames, requests_for) -> dict[str, list]:
    """Each clip as a camera loop: one frame at a time, awaiting its answer, all running at once."""
    async def camera(clip):
        return [await batcher.detect(requests_for(clip, image)) for image in frames[clip]]
    results = await asyncio.gather(*(camera(c) for c in CLIPS))
    return dict(zip(CLIPS, results))


def test_batched_equals_one_by_one_on_real_frames(detector, frames):
    person, car = detector.class_ids(["person"]), detector.class_ids(["car", "truck"])
    classes = {CLIPS[0]: person, CLIPS[1]: car, CLIPS[2]: None}  # each camera its own class filter
    alone = {c: [detector.detect(im, classes[c]) for im in frames[c]] for c in CLIPS}
    # A round waits (up to 5 s) until all three cameras' frames are in: the count below is exact.
    batcher = InferenceBatcher(max_size=3, max_wait_s=5.0)
    try:
        out = asyncio.run(cameras(batcher, frames, lambda c, im: [DetectRequest(detector, im, classes[c])]))
    finally:
        batcher.close()
    batched = {c: [d for (d,) in out[c]] for c in CLIPS}
    # Three cameras each with one frame in flight: rounds of 3, so 12 images in 4 forward passes.
    assert batcher.images == 12 and batcher.batches == 4
    for c in CLIPS:
        for a, b in zip(alone[c], batched[c]):
            same(a, b)
    # The content is real: people on the table clip, cars on the car clip, nothing else through.
    assert all(len(d) and set(d.cls.tolist()) == {0} for d in batched[CLIPS[0]])
    assert any(len(d) for d in batched[CLIPS[1]]) and all(set(d.cls.tolist()) <= {2, 7} for d in batched[CLIPS[1]])


def test_one_detect_batch_equals_detect(detector, frames):
    images = [frames[c][1] for c in CLIPS] * 3  # 9 images of two sizes in one pass
    for a, b in zip([detector.detect(im) for im in images], detector.detect_batch(images, [None] * 9)):
        same(a, b)


def test_models_batched_separately(detector, frames):
    """Two models in one round: each runs once over its own images (ONNX Runtime: a fixed-batch
    export runs per image inside the same call), and every answer goes back to its request."""
    onnx = YoloDetector(CustomModelConfig(name="garbage", path=export("yolov8n", "onnx", 640, DATA_DIR),
                                          classes={"bottle": CustomClassConfig(category="x")}), DATA_DIR)
    bottle = onnx.class_ids(["bottle"])
    reqs = lambda c, im: [DetectRequest(detector, im, None), DetectRequest(onnx, im, bottle)]  # noqa: E731
    batcher = InferenceBatcher(max_size=6, max_wait_s=5.0)
    try:
        out = asyncio.run(cameras(batcher, frames, reqs))
    finally:
        batcher.close()
    assert batcher.images == 24 and batcher.batches == 8  # 4 rounds x 2 models
    for c in CLIPS:
        for im, (main, custom) in zip(frames[c], out[c]):
            same(main, detector.detect(im))
            same(custom, onnx.detect(im, bottle))
    assert any(len(custom) for _, custom in out[CLIPS[2]])  # bottles on the bottle clip


def test_model_error_reaches_every_waiting_camera(detector, frames):
    bad = np.zeros((4, 4), np.uint8)  # no colour channels: the letterbox cannot make an input of it
    batcher = InferenceBatcher(max_size=2, max_wait_s=5.0)

    async def run():
        return await asyncio.gather(batcher.detect([DetectRequest(detector, bad)]),
                                    batcher.detect([DetectRequest(detector, bad)]), return_exceptions=True)
    try:
        results = asyncio.run(run())
        assert all(isinstance(r, Exception) for r in results), results
        # The thread survives a failed round: the next frame is answered.
        ok = asyncio.run(batcher.detect([DetectRequest(detector, frames[CLIPS[0]][1])]))
        assert len(ok[0]) > 0
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(batcher.detect([DetectRequest(detector, frames[CLIPS[0]][1])]))
