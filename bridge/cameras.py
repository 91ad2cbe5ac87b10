"""The running cameras: each camera's loop from a decoded frame to events in the sink.

A camera is a decoder (`ingest/worker.py`, in its own thread, handing frames over in a
latest-wins slot: frames may be dropped, and are counted), its analysis stage
(`detectors/camera_stage.py`, the models batched across cameras by one inference thread) and its
event building (`bridge/events/camera_events.py`, in a worker thread: JPEG and clip writes). Its
loop takes the newest frame, lets the stage turn it into incident changes, builds their events and
hands them to the sink (`bridge/sink.py`). Verify requests are answered from the same frame.

In cluster mode (docs/scale-out.md) the consumer group's assignment starts and releases cameras
here (`start_cameras`, `release_cameras`, `keep_parked`: the ownership's host), and a camera's open
incidents go to the state topic whenever one opens or clears, so its next owner can carry them on.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from bridge.events.camera_events import CameraEvents
from bridge.events.evidence_store import EvidenceStore
from bridge.events.model import Event
from bridge.http.app import CameraView
from detectors.annotate import annotated_jpeg
from detectors.batching import InferenceBatcher
from detectors.camera_stage import CameraStage
from detectors.lifecycle import IncidentChange
from ingest.frame import Frame
from ingest.handoff import LatestSlot
from ingest.rate import RateMeter
from ingest.stream_config import VideoInputConfig
from ingest.worker import CameraWorker

log = structlog.get_logger(__name__)

# A camera config (the root's model: `id`, `name`, `url`, `analysis_fps`, ...) -> its stage and event
# building. Blocking (it may load a model): run in a thread once the loop runs.
BuildCamera = Callable[[Any], tuple[CameraStage, CameraEvents]]


@dataclass
class CameraRuntime:
    config: Any  # the root's camera config
    slot: LatestSlot[Frame]
    worker: CameraWorker
    stage: CameraStage
    events: CameraEvents
    errors: int = 0
    analysed_fps: RateMeter = field(default_factory=RateMeter)
    task: asyncio.Task | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while waiting for a frame
    generation: int | None = None  # cluster mode: the group generation it runs under
    partition: int | None = None  # cluster mode: its registry partition

    def view(self) -> CameraView:
        st = self.worker.status
        return CameraView(
            id=self.config.id, name=self.config.name, url=st.url, state=st.state.value, since=st.since,
            down_since=st.down_since, last_frame_at=st.last_frame_at, last_error=st.last_error,
            last_error_at=st.last_error_at, reconnects=st.reconnects, decode_errors=st.decode_errors,
            fps_in=round(st.fps_in.rate(), 2), fps_analysed=round(self.analysed_fps.rate(), 2),
            keyframes_only=st.keyframes_only, frames_received=st.frames_received,
            frames_decoded=st.frames_decoded, frames_sampled=st.frames_sampled,
            frames_dropped=self.slot.dropped, frames_analysed=self.stage.frames_analysed,
        )


class Cameras:
    def __init__(self, build: BuildCamera, inference: InferenceBatcher, video: VideoInputConfig,
                 publish: Callable[[Event], Awaitable[None]], feedback: Any | None = None, *,
                 worker: str | None = None, handover_confirm_s: float = 0.0, status_interval_s: float = 10.0,
                 drain: Callable[[float], Awaitable[None]] | None = None,
                 count_adopted: Callable[[int], None] | None = None) -> None:
        """`feedback`: the feedback handler (verify requests: `take`, `answered`; cluster: `assigned`,
        `released`). Cluster mode: `worker` (this worker's name), `drain` (the sink's: the outbox sent
        before a release ends), `count_adopted` (the metric of incidents taken over); the ownership's
        records (`state`, `status`) are set as `records` once made."""
        self.build, self.inference, self.video, self.publish = build, inference, video, publish
        self.feedback = feedback
        self.worker, self.handover_confirm_s, self.status_interval_s = worker, handover_confirm_s, status_interval_s
        self.drain, self.count_adopted = drain, count_adopted
        self.records: Any | None = None
        self.running: list[CameraRuntime] = []
        self._parked: dict[str, CameraRuntime] = {}  # released, kept in case the next assignment gives them back

    def add(self, cam: Any) -> CameraRuntime:
        """A camera of the config, built now (before the loop runs); `start` runs it."""
        stage, events = self.build(cam)
        rt = self._runtime(cam, stage, events)
        self.running.append(rt)
        return rt

    def _runtime(self, cam: Any, stage: CameraStage, events: CameraEvents) -> CameraRuntime:
        slot: LatestSlot[Frame] = LatestSlot(asyncio.get_running_loop())
        return CameraRuntime(cam, slot, self._decoder(cam, slot, events), stage, events)

    def _decoder(self, cam: Any, slot: LatestSlot[Frame], events: CameraEvents) -> CameraWorker:
        return CameraWorker(cam.id, cam.url, cam.analysis_fps, slot.put, realtime=True, loop=True,
                            video=self.video, ring=events.ring)

    def start_loops(self) -> None:
        """Each camera's loop on the event loop (the decoders start with `start_decoders`)."""
        for c in self.running:
            c.task = asyncio.create_task(self._loop(c), name=f"camera-{c.config.id}")

    def start_decoders(self) -> None:
        for c in self.running:
            c.worker.start()

    async def stop(self) -> list[asyncio.Task]:
        """Stop the decoders and cancel the loops; returns the loops to wait for."""
        for c in self.running:
            await asyncio.to_thread(c.worker.stop)
            if c.task is not None:
                c.task.cancel()
        return [c.task for c in self.running if c.task is not None]

    def collected(self) -> list[tuple]:
        """Each camera's decoder status, dropped and analysed frames, analysed rate (the metrics collector)."""
        return [(c.worker.status, c.slot.dropped, c.stage.frames_analysed, c.analysed_fps.rate()) for c in self.running]

    async def apply(self, cam_cfg: Any) -> None:
        """Run one camera with a new config: its decoder restarts, the other cameras never notice.
        Incidents open under the old config end with it (the new rules start from nothing)."""
        rt = next(c for c in self.running if c.config.id == cam_cfg.id)
        stage, events = await asyncio.to_thread(self.build, cam_cfg)
        await asyncio.to_thread(rt.worker.stop)
        rt.config, rt.stage, rt.events = cam_cfg, stage, events
        rt.worker = self._decoder(cam_cfg, rt.slot, events)
        rt.worker.start()
        log.info("camera.reconfigured", camera=cam_cfg.id, config_hash=events.context.config_hash)

    # -- one camera's loop ---------------------------------------------------------------------------
    async def _loop(self, cam: CameraRuntime) -> None:
        while True:
            # A release cancels the loop only while it waits for a frame or for the model, never
            # between a lifecycle change and its events (see `_analyse`).
            cam.idle.set()
            frame = await cam.slot.get()
            await self._analyse(cam, frame)

    async def _analyse(self, cam: CameraRuntime, frame: Frame) -> None:
        stage, build = cam.stage, cam.events  # read per frame: `apply` swaps them
        occurred = datetime.fromtimestamp(frame.wall_time).astimezone()
        try:
            changes = await stage.on_frame(frame, self.inference.detect, frame.wall_time, occurred)
            cam.idle.clear()
            cam.analysed_fps.tick()
            events = (await asyncio.to_thread(build.events, frame, changes, occurred)
                      if changes or build.clips_pending or stage.reads_pending else [])
        except Exception:  # one bad frame must not stop the camera; it is logged and counted
            cam.errors += 1
            log.exception("camera.analysis_failed", camera=cam.config.id, frame=frame.index)
            return
        await self._publish(cam, changes, events)
        for p in self.feedback.take(cam.config.id) if self.feedback else []:
            try:  # answered from this frame; one that fails here is answered by its timeout
                answer = await asyncio.to_thread(build.verification, frame, p, occurred)
            except Exception:
                cam.errors += 1
                log.exception("camera.verification_failed", camera=cam.config.id, request=p.request_id)
                continue
            await self.feedback.answered(p, answer)

    async def _publish(self, cam: CameraRuntime, changes: list[IncidentChange], events: list[Event]) -> None:
        """A camera's events into the sink; clustered, its open incidents go to the state topic
        first, so whoever runs the camera next knows every incident the platform may hear of."""
        if self.records is not None and cam.generation is not None:
            if any(c.status != "updated" for c in changes):
                await self.records.state(cam.config.id, cam.partition, cam.generation, cam.stage.open_incidents())
            stamp = {"worker": self.worker, "generation": cam.generation}
            events = [e.model_copy(update={"source": e.source.model_copy(update=stamp)}) for e in events]
        for event in events:
            await self.publish(event)

    async def health_loop(self, period_s: float = 1.0) -> None:
        """Camera-offline incidents: a dead camera sends no frames, so its state is polled."""
        while True:
            await asyncio.sleep(period_s)
            now = time.time()
            for cam in self.running:
                changes = cam.stage.on_status(cam.worker.status.down_since, now)
                if not changes:
                    continue
                occurred = datetime.fromtimestamp(now).astimezone()
                await self._publish(cam, changes, cam.events.events(None, changes, occurred))

    # -- the newest frame, for the console and as sensors' evidence ----------------------------------
    def latest_image(self, camera_id: str):
        for c in self.running:
            if c.config.id == camera_id:
                return c.worker.latest.image if c.worker.latest is not None else None

    async def snapshot(self, evidence: EvidenceStore, camera_ids: list[str], label: str) -> dict | None:
        """A JPEG of the newest frame of the first linked camera that has one, as evidence."""
        for cam in self.running:
            frame = cam.worker.latest  # the decoder's newest frame, the same one /snapshot serves
            if cam.config.id in camera_ids and frame is not None:
                item = await asyncio.to_thread(lambda: evidence.put(annotated_jpeg(frame.image, None, None, label), "jpg"))
                return {"snapshot": item}
        return None

    # -- cluster mode: the consumer group's assignment starts and stops cameras ----------------------
    async def start_cameras(self, cameras: list[Any], generation: int, partition_of: dict[str, int],
                            states: dict[str, dict]) -> None:
        """Run cameras the group assigned to this worker under `generation`.

        One that this worker let go in the last rebalance comes back with its memory (tracks, open
        incidents); any other carries on the open incidents its previous owner left in the state topic.
        """
        now = time.time()
        for cam in cameras:
            rt = self._parked.pop(cam.id, None)
            adopted = 0
            if rt is None or rt.config != cam:
                stage, events = await asyncio.to_thread(self.build, cam)
                rt = self._runtime(cam, stage, events)
                state = states.get(cam.id)
                if state is not None and state["generation"] < generation:
                    adopted = stage.adopt(state["open"], now, self.handover_confirm_s)
                    if self.count_adopted is not None:
                        self.count_adopted(adopted)
            else:  # the decoder thread cannot restart: a new one on the same stage
                rt.worker = self._decoder(cam, rt.slot, rt.events)
            rt.generation, rt.partition = generation, partition_of[cam.id]
            self.running.append(rt)
            rt.task = asyncio.create_task(self._loop(rt), name=f"camera-{cam.id}")
            rt.worker.start()
            await self.records.state(cam.id, rt.partition, generation, rt.stage.open_incidents())
            self.feedback.assigned([cam.id])
            log.info("camera.assigned", camera=cam.id, worker=self.worker, generation=generation,
                     partition=rt.partition, adopted_incidents=adopted)

    async def release_cameras(self, camera_ids: list[str]) -> None:
        """Stop cameras the group took away; their open incidents go to the state topic for the next owner,
        and the outbox is drained so their last events reach Kafka before anyone else runs them."""
        ids = set(camera_ids)
        self.feedback.released(list(ids))  # the next owner answers their verify requests
        leaving = [c for c in self.running if c.config.id in ids]
        t0 = time.monotonic()
        for rt in leaving:
            rt.worker.signal_stop()  # no frame is handed on from here; the threads end in the background

        async def finish(rt: CameraRuntime) -> None:
            try:  # let the frame in hand finish: its changes and events belong together
                await asyncio.wait_for(rt.idle.wait(), 30.0)
            except asyncio.TimeoutError:
                log.error("camera.release_timeout", camera=rt.config.id, note="cancelling mid-frame")
            rt.task.cancel()
            await asyncio.gather(rt.task, return_exceptions=True)
            await self.records.state(rt.config.id, rt.partition, rt.generation, rt.stage.open_incidents())

        await asyncio.gather(*(finish(rt) for rt in leaving))
        self.running = [c for c in self.running if c.config.id not in ids]
        for rt in leaving:
            self._parked[rt.config.id] = rt
            asyncio.get_running_loop().run_in_executor(None, rt.worker.stop)  # join the threads off the hand-over path
        if self.drain is not None:
            await self.drain(5.0)
        log.info("cluster.cameras_released", worker=self.worker, cameras=len(leaving),
                 seconds=round(time.monotonic() - t0, 2))

    def keep_parked(self, partitions: set[int]) -> None:
        """A new assignment: released cameras outside it are gone for good (someone else has them)."""
        for cid in [c for c, rt in self._parked.items() if rt.partition not in partitions]:
            del self._parked[cid]

    async def status_loop(self) -> None:
        """Each running camera's status with owner and generation: who analyses what, in the data."""
        while True:
            await asyncio.sleep(self.status_interval_s)
            for cam in list(self.running):
                if cam.generation is not None:
                    await self.records.status(cam.config.id, cam.partition, cam.generation,
                                              cam.view().model_dump(mode="json"))
