"""`xueliang run`: every camera, the outbox, the Kafka dispatcher and the API on one event loop.

Threads do the blocking work: one decode thread per camera (handing frames over in a latest-wins
slot), one inference thread shared by all cameras, and the outbox's SQLite thread. Frames may be
dropped, and are counted; events are never dropped: each is committed to the outbox before it is
published anywhere.
"""
from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime

import structlog
import uvicorn
from prometheus_client import REGISTRY

from bridge.http.app import ApiState, CameraView, create_app
from bridge.http.console.map_api import camera_locations
from bridge.store.dead_letters import DeadLetterStore
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore
from bridge.kafka.dispatch import KafkaDispatcher
from bridge.events.model import Event
from bridge.feedback.messages import SuppressionGate
from bridge.feedback.consumer import FeedbackConsumer
from bridge.feedback.work_orders import WorkOrderLog
from bridge.http.hub import Hub
from bridge.merging.rewrite import MergeStage
from bridge.bridge_metrics import EVENTS, SUPPRESSED
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from detectors.batching import InferenceBatcher
from ingest.frame import Frame
from ingest.handoff import LatestSlot
from ingest.ingest_metrics import CameraCollector
from ingest.rate import RateMeter
from ingest.worker import CameraWorker
from xueliang.stacks import log_stacks, wait_bounded
from bridge.merging.over_kafka import KafkaMergeStage
from bridge.kafka.camera_ownership import CameraOwnership, ClusterRecords
from bridge.kafka.camera_registry import ensure_cluster_topics
from xueliang.cluster_cameras import registry_camera_parser
from bridge.kafka.sensor_partitions import SensorStage
from xueliang.config import CameraConfig, ServiceConfig
from bridge.http.live.console_live import ConsoleLive
from bridge.bridge_metrics import CLUSTER_ADOPTED
from bridge.feedback.incident_directory import IncidentDirectory
from bridge.feedback.handler import FeedbackHandler
from xueliang.pipeline import CameraPipeline
from bridge.store.upkeep import Reliability
from xueliang.resume import carry_over
from bridge.sensor_feed import SensorRuntime
from xueliang.backtest_wiring import Bench, apply_saved
from xueliang.wiring import Core, build_core

log = structlog.get_logger(__name__)


@dataclass
class CameraRuntime:
    config: CameraConfig
    slot: LatestSlot[Frame]
    worker: CameraWorker
    pipeline: CameraPipeline
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
            frames_dropped=self.slot.dropped, frames_analysed=self.pipeline.frames_analysed,
        )


class Service:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.cameras: list[CameraRuntime] = []
        self.ready = False
        self.stopping = asyncio.Event()
        self.store: EventStore | None = None
        self.rel: Reliability | None = None  # made with the store in run()
        self.dispatcher: KafkaDispatcher | None = None
        self.hub = Hub()
        self.api_port: int | None = None
        self._inference = InferenceBatcher(cfg.model.batch.max_size, cfg.model.batch.max_wait_ms / 1000)
        self._collector: CameraCollector | None = None
        self.sensors: SensorRuntime | None = None
        self.deadletters: DeadLetterStore | None = None
        self.merge: MergeStage | None = None
        self.gate = SuppressionGate()  # closed work orders: what is kept back from the platform
        self.feedback: FeedbackHandler | None = None
        self.core: Core | None = None
        self.bench: Bench | None = None
        # Cluster mode (docs/scale-out.md): cameras come and go with the consumer group's assignment.
        self.worker = cfg.cluster.worker_name() if cfg.cluster.enabled else None
        if self.worker is not None and cfg.mqtt is not None:  # one MQTT session per worker in the shared group
            cfg.mqtt = cfg.mqtt.model_copy(update={"client_id": f"{cfg.mqtt.client_id}-{self.worker}"})
        self.ownership: CameraOwnership | None = None
        self.records: ClusterRecords | None = None
        self.kafka_merge: KafkaMergeStage | None = None
        self._parked: dict[str, CameraRuntime] = {}  # released, kept in case the next assignment gives them back
        self.live: ConsoleLive | None = None  # live video, overlay, availability

    async def run(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(cfg.outbox_path, fsync=cfg.outbox.fsync)
        self.rel = Reliability(cfg, self.store, self._stored)  # disk guard, held events, retention, readiness
        self.gate.until.update(await self.store.suppressions(time.time()))
        runs = (lambda: {c.config.id for c in self.cameras}) if cfg.cluster.enabled else {c.id for c in cfg.cameras}
        self.work_orders = WorkOrderLog(cfg.console_db_path)  # feedback's work-order states, for the clocks
        self.feedback = FeedbackHandler(cfg.feedback, self.store, self.gate, runs, self.publish,
                                        work_orders=self.work_orders)
        console_db = ConsoleDb(cfg.console_db_path)
        running_versions = await asyncio.to_thread(apply_saved, cfg, console_db)
        core = self.core = await asyncio.to_thread(build_core, cfg)
        core.evidence = self.rel.evidence(core.evidence)
        if cfg.sensors.devices:
            self.deadletters = DeadLetterStore(cfg.deadletters_path, max_rows=cfg.sensors.deadletters.max_rows)
            self.sensors = SensorRuntime(cfg, core.factory, self.deadletters, self.publish,
                                         lambda cams, label: self._snapshot(core.evidence, cams, label))
            try:
                await self.sensors.start()  # wrong credentials end the start-up here, with the broker's reason
            except BaseException:
                await self._shutdown([], None)
                raise
        self.merge = None if cfg.cluster.enabled else core.merge  # clustered, the merge runs on the incidents topic
        for cam in cfg.cameras:
            slot: LatestSlot[Frame] = LatestSlot(loop)
            pipeline = core.pipeline(cfg, cam.id)
            self.cameras.append(CameraRuntime(cam, slot, self._worker(cam, slot, pipeline), pipeline))
        if cfg.restart.carry_over and not cfg.cluster.enabled:  # clustered, the state topic carries them
            await carry_over(cfg.outbox_path, cameras={c.config.id: c.pipeline for c in self.cameras},
                             sensors=self.sensors, merge=self.merge, gate=self.gate, publish=self.publish,
                             confirm_s=cfg.restart.confirm_s)
        self._collector = CameraCollector(
            lambda: [(c.worker.status, c.slot.dropped, c.pipeline.frames_analysed, c.analysed_fps.rate())
                     for c in self.cameras])
        REGISTRY.register(self._collector)

        for c in self.cameras:
            c.task = asyncio.create_task(self._camera_loop(c), name=f"camera-{c.config.id}")
        self.live = ConsoleLive(cfg, lambda: self.cameras, core.factory.grid, self.worker or "service")
        tasks = self.rel.tasks() + self.live.start()
        if self.cameras or cfg.cluster.enabled:
            tasks.append(asyncio.create_task(self._health_loop(), name="camera-health"))
        if cfg.kafka.bootstrap_servers:
            kafka = cfg.kafka
            if cfg.cluster.enabled:  # this worker's incidents go to the merge stage's topic, not to dispatch
                kafka = kafka.model_copy(update={"topic": cfg.cluster.incidents_topic,
                                                 "feedback_group": f"{kafka.feedback_group}-{self.worker}"})
                tasks += await self._start_cluster()
            self.dispatcher = KafkaDispatcher(self.store, kafka)
            tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
            if cfg.kafka.feedback_topic:
                if cfg.cluster.enabled:  # the platform's incidents, merged: what its feedback refers to
                    directory = IncidentDirectory(cfg.kafka, lookback_s=cfg.cluster.feedback_lookback_s,
                                                  read_committed=cfg.cluster.exactly_once,
                                                  client_id=f"{cfg.kafka.client_id}-{self.worker}-directory")
                    self.feedback.lookup = directory.lookup
                    self.feedback.answered_elsewhere = directory.answered.__contains__
                    tasks.append(asyncio.create_task(directory.run(), name="feedback-directory"))
                tasks.append(asyncio.create_task(FeedbackConsumer(kafka, self.feedback).run(), name="feedback"))
        if self.sensors is not None:  # after the cluster stages: clustered, readings are forwarded from the first
            tasks.append(asyncio.create_task(self.sensors.run(), name="sensors"))
        server = None
        if cfg.api.enabled:
            tokens = TokenStore(cfg.api.auth.tokens, cfg.tokens_path)
            if not len(tokens):
                log.warning("auth.no_tokens", tokens_file=str(cfg.tokens_path),
                            hint="every request but /healthz is refused; make one with `xueliang tokens add`")
            auth = AuthContext(tokens, Sessions(cfg.api.auth.session_ttl_s), console_db, limiter=self.rel.login_limiter)
            self.bench = Bench(cfg, console_db, self.apply_camera, running_versions)
            app = create_app(ApiState(self.store, self.hub, core.evidence,
                                      lambda: [c.view() for c in self.cameras], lambda: self.ready,
                                      self._latest_image, deadletters=self.deadletters,
                                      sensors=self.sensors.views if self.sensors is not None else None,
                                      auth=auth, grid=core.factory.grid, tuning=self.bench,
                                      cors_origins=cfg.api.cors_origins,
                                      readiness=self.rel.readiness(lambda: self.ready, lambda: self.dispatcher,
                                                                   lambda: [c.view().state for c in self.cameras]),
                                      notify_dispatch=lambda: self.dispatcher.notify() if self.dispatcher else None,
                                      plate_role=cfg.privacy.plate_role, live=self.live.features,
                                      map_config=cfg.api.map,
                                      locations=lambda: camera_locations(c.config for c in self.cameras),
                                      catalogue=core.factory.catalogue, clocks=cfg.api.clocks,
                                      work_orders=self.work_orders, publish=self.publish))
            server = uvicorn.Server(uvicorn.Config(app, host=cfg.api.host, port=cfg.api.port, log_config=None,
                                                   access_log=False, lifespan="off"))
            server.install_signal_handlers = lambda: None  # the service owns SIGINT/SIGTERM
            tasks.append(asyncio.create_task(server.serve(), name="api"))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, log_stacks, "SIGUSR1")
        for c in self.cameras:
            c.worker.start()
        if server is not None:
            while not server.started and not any(t.done() for t in tasks):
                await asyncio.sleep(0.05)
            if server.started:
                self.api_port = server.servers[0].sockets[0].getsockname()[1]
        self.ready = True
        log.info("service.started", cameras=len(self.cameras), api_port=self.api_port,
                 kafka=bool(cfg.kafka.bootstrap_servers))
        try:
            stop = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stop and t.exception() is not None:
                    log.error("service.task_failed", task=t.get_name(), error=repr(t.exception()))
        finally:
            await self._shutdown(tasks, server)

    async def _shutdown(self, tasks: list[asyncio.Task], server: uvicorn.Server | None) -> None:
        self.ready = False
        log.info("service.stopping")
        for t in tasks:  # the cluster stages first: they hand this worker's cameras and grids on
            if t.get_name() in ("cluster-ownership", "cluster-merge"):
                t.cancel()
        if self.live is not None:
            await self.live.close()
        cluster = [t for t in tasks if t.get_name() in ("cluster-ownership", "cluster-merge")]
        if cluster:  # hand over in time, or give up: with Kafka unreachable the group leave can hang
            done, pending = await asyncio.wait(cluster, timeout=15.0)
            if pending:
                log.error("cluster.stop_timeout", tasks=[t.get_name() for t in pending],
                          note="the group notices by session timeout instead")
        for c in self.cameras:
            await asyncio.to_thread(c.worker.stop)
            if c.task is not None:
                c.task.cancel()
        if server is not None:
            server.should_exit = True
        self.hub.close()
        if self.feedback is not None:
            self.feedback.close()
        for t in tasks:
            if t.get_name() != "api":
                t.cancel()
        await wait_bounded(tasks, 10.0, "tasks")
        await wait_bounded([c.task for c in self.cameras], 10.0, "camera loops")
        self._inference.close()
        if self.records is not None:
            await self.records.stop()
        if self.bench is not None:
            await asyncio.to_thread(self.bench.close)
        if self._collector is not None:
            REGISTRY.unregister(self._collector)
        if self.store is not None:
            await self.rel.stop()
            self.store.close()
        if self.deadletters is not None:
            self.deadletters.close()
        if self.live is not None:
            self.live.close_db()
        log.info("service.stopped")

    def _worker(self, cam: CameraConfig, slot: LatestSlot[Frame], pipeline: CameraPipeline) -> CameraWorker:
        return CameraWorker(cam.id, cam.url, cam.analysis_fps, slot.put, realtime=True, loop=True,
                            video=self.cfg.video, ring=pipeline.ring)

    async def apply_camera(self, cam_cfg: CameraConfig) -> None:
        """Run one camera with a new config: its decoder restarts, the other cameras never notice.
        Incidents open under the old config end with it (the new rules start from nothing)."""
        assert self.core is not None
        rt = next(c for c in self.cameras if c.config.id == cam_cfg.id)
        self.cfg.cameras = [cam_cfg if c.id == cam_cfg.id else c for c in self.cfg.cameras]
        pipeline = await asyncio.to_thread(self.core.pipeline, self.cfg, cam_cfg.id)
        await asyncio.to_thread(rt.worker.stop)
        rt.config, rt.pipeline = cam_cfg, pipeline
        rt.worker = self._worker(cam_cfg, rt.slot, pipeline)
        rt.worker.start()
        log.info("camera.reconfigured", camera=cam_cfg.id, config_hash=pipeline.context.config_hash)

    # -- cluster mode: the consumer group's assignment starts and stops cameras ----------------------
    async def _start_cluster(self) -> list[asyncio.Task]:
        c = self.cfg.cluster
        counts = await ensure_cluster_topics(self.cfg.kafka.bootstrap_servers, c)
        self.records = ClusterRecords(self.cfg.kafka, c, self.worker)
        await self.records.start()
        self.ownership = CameraOwnership(self.cfg.kafka, c, self, self.worker, registry_camera_parser(self.cfg))
        self.kafka_merge = KafkaMergeStage(
            self.cfg.kafka, self.cfg.merge, source_topic=c.incidents_topic, group=c.merge_group, worker=self.worker,
            exactly_once=c.exactly_once, session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms)
        log.info("cluster.joining", worker=self.worker, group=c.group, merge_group=c.merge_group)
        tasks = [asyncio.create_task(self.ownership.run(), name="cluster-ownership"),
                 asyncio.create_task(self.kafka_merge.run(), name="cluster-merge"),
                 asyncio.create_task(self._status_loop(), name="cluster-status")]
        if self.sensors is not None:
            stage = SensorStage(self.cfg.kafka, c, self.sensors, self.worker, counts[c.readings_topic])
            await stage.start()
            tasks.append(asyncio.create_task(stage.run(), name="cluster-sensors"))
        return tasks

    async def start_cameras(self, cameras: list[CameraConfig], generation: int, partition_of: dict[str, int],
                            states: dict[str, dict]) -> None:
        """Run cameras the group assigned to this worker under `generation`.

        One that this worker let go in the last rebalance comes back with its memory (tracks, open
        incidents); any other carries on the open incidents its previous owner left in the state topic.
        """
        assert self.core is not None
        loop, now = asyncio.get_running_loop(), time.time()
        for cam in cameras:
            rt = self._parked.pop(cam.id, None)
            adopted = 0
            if rt is None or rt.config != cam:
                pipeline = await asyncio.to_thread(self.core.pipeline, self.cfg, cam)
                slot: LatestSlot[Frame] = LatestSlot(loop)
                rt = CameraRuntime(cam, slot, self._worker(cam, slot, pipeline), pipeline)
                state = states.get(cam.id)
                if state is not None and state["generation"] < generation:
                    adopted = pipeline.adopt(state["open"], now, self.cfg.cluster.handover_confirm_s)
                    CLUSTER_ADOPTED.inc(adopted)
            else:  # the decoder thread cannot restart: a new one on the same pipeline
                rt.worker = self._worker(cam, rt.slot, rt.pipeline)
            rt.generation, rt.partition = generation, partition_of[cam.id]
            self.cameras.append(rt)
            rt.task = asyncio.create_task(self._camera_loop(rt), name=f"camera-{cam.id}")
            rt.worker.start()
            await self.records.state(cam.id, rt.partition, generation, rt.pipeline.open_incidents())
            self.feedback.assigned([cam.id])
            log.info("camera.assigned", camera=cam.id, worker=self.worker, generation=generation,
                     partition=rt.partition, adopted_incidents=adopted)

    async def release_cameras(self, camera_ids: list[str]) -> None:
        """Stop cameras the group took away; their open incidents go to the state topic for the next owner,
        and the outbox is drained so their last events reach Kafka before anyone else runs them."""
        ids = set(camera_ids)
        self.feedback.released(list(ids))  # the next owner answers their verify requests
        leaving = [c for c in self.cameras if c.config.id in ids]
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
            await self.records.state(rt.config.id, rt.partition, rt.generation, rt.pipeline.open_incidents())

        await asyncio.gather(*(finish(rt) for rt in leaving))
        self.cameras = [c for c in self.cameras if c.config.id not in ids]
        for rt in leaving:
            self._parked[rt.config.id] = rt
            asyncio.get_running_loop().run_in_executor(None, rt.worker.stop)  # join the threads off the hand-over path
        await self._drain_outbox(5.0)
        log.info("cluster.cameras_released", worker=self.worker, cameras=len(leaving),
                 seconds=round(time.monotonic() - t0, 2))

    def keep_parked(self, partitions: set[int]) -> None:
        """A new assignment: released cameras outside it are gone for good (someone else has them)."""
        for cid in [c for c, rt in self._parked.items() if rt.partition not in partitions]:
            del self._parked[cid]

    async def _drain_outbox(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.dispatcher is not None and time.monotonic() < deadline:
            if not await self.store.backlog():
                return
            self.dispatcher.notify()
            await asyncio.sleep(0.05)
        if self.dispatcher is not None:
            log.warning("cluster.outbox_not_drained", timeout_s=timeout_s,
                        note="the rest goes out later, under the old generation, and is fenced if a newer owner spoke")

    async def _status_loop(self) -> None:
        """Each running camera's status with owner and generation: who analyses what, in the data."""
        while True:
            await asyncio.sleep(self.cfg.cluster.status_interval_s)
            for cam in list(self.cameras):
                if cam.generation is not None:
                    await self.records.status(cam.config.id, cam.partition, cam.generation,
                                              cam.view().model_dump(mode="json"))

    async def _camera_loop(self, cam: CameraRuntime) -> None:
        while True:
            # A release cancels the loop only while it waits for a frame or for the model, never
            # between a lifecycle change and its events (see `_analyse`).
            cam.idle.set()
            frame = await cam.slot.get()
            await self._analyse(cam, frame)

    async def _analyse(self, cam: CameraRuntime, frame: Frame) -> None:
        loop = asyncio.get_running_loop()
        pipe = cam.pipeline  # read per frame: apply_camera swaps it
        try:
            detections = pipe.combine(await self._inference.detect(pipe.requests(frame)))  # batched across cameras
            cam.idle.clear()
            occurred = datetime.fromtimestamp(frame.wall_time).astimezone()
            changes = pipe.analyse(frame, detections, frame.wall_time, occurred)
            cam.analysed_fps.tick()
            events = (await asyncio.to_thread(pipe.events, frame, changes, occurred)
                      if changes or pipe.clips_pending or pipe.reads_pending else [])
        except Exception:  # one bad frame must not stop the camera; it is logged and counted
            cam.errors += 1
            log.exception("camera.analysis_failed", camera=cam.config.id, frame=frame.index)
            return
        await self._camera_events(cam, changes, events)
        for p in self.feedback.take(cam.config.id) if self.feedback else []:
            try:  # answered from this frame; one that fails here is answered by its timeout
                answer = await asyncio.to_thread(pipe.verification, frame, p, occurred)
            except Exception:
                cam.errors += 1
                log.exception("camera.verification_failed", camera=cam.config.id, request=p.request_id)
                continue
            await self.feedback.answered(p, answer)

    async def _camera_events(self, cam: CameraRuntime, changes, events: list[Event]) -> None:
        """A camera's events into the outbox; clustered, its open incidents go to the state topic
        first, so whoever runs the camera next knows every incident the platform may hear of."""
        if self.records is not None and cam.generation is not None:
            if any(c.status != "updated" for c in changes):
                await self.records.state(cam.config.id, cam.partition, cam.generation, cam.pipeline.open_incidents())
            stamp = {"worker": self.worker, "generation": cam.generation}
            events = [e.model_copy(update={"source": e.source.model_copy(update=stamp)}) for e in events]
        for event in events:
            await self.publish(event)

    def _latest_image(self, camera_id: str):
        for c in self.cameras:
            if c.config.id == camera_id:
                return c.worker.latest.image if c.worker.latest is not None else None

    async def _snapshot(self, evidence, camera_ids: list[str], label: str) -> dict | None:
        """A JPEG of the newest frame of the first linked camera that has one, as evidence."""
        from detectors.annotate import annotated_jpeg

        for cam in self.cameras:
            frame = cam.worker.latest  # the decoder's newest frame, the same one /snapshot serves
            if cam.config.id in camera_ids and frame is not None:
                item = await asyncio.to_thread(lambda: evidence.put(annotated_jpeg(frame.image, None, None, label), "jpg"))
                return {"snapshot": item}
        return None

    async def _health_loop(self, period_s: float = 1.0) -> None:
        """Camera-offline incidents: a dead camera sends no frames, so its state is polled."""
        while True:
            await asyncio.sleep(period_s)
            now = time.time()
            for cam in self.cameras:
                changes = cam.pipeline.health.on_status(cam.worker.status.down_since, now)
                if not changes:
                    continue
                occurred = datetime.fromtimestamp(now).astimezone()
                await self._camera_events(cam, changes, cam.pipeline.events(None, changes, occurred))

    async def publish(self, event: Event) -> None:
        """Commit to the outbox first; only then tell the live stream and the dispatcher."""
        assert self.store is not None
        if self.merge is not None:  # the same incident seen by several sources: one record
            event = self.merge.apply(event)
        suppressed = self.gate.check(event, time.time())
        await self.rel.writer.append(event, suppressed)  # calls _stored once committed: now, or after a full disk

    async def _stored(self, seq: int, event: Event, suppressed: str | None) -> None:
        if suppressed is not None:  # kept, queryable, never sent: the platform closed its work order
            SUPPRESSED.labels(event.status, event.category.code).inc()
            log.info("event suppressed", status=event.status, category=event.category.code,
                     camera=event.source.camera_id, incident=event.incident_id, reason=suppressed)
            return
        EVENTS.labels(event.status, event.category.code).inc()
        self.hub.publish(seq, event.model_dump(mode="json"))
        if self.dispatcher is not None:
            self.dispatcher.notify()
        log.info("event", status=event.status, category=event.category.code, camera=event.source.camera_id,
                 sensor=event.source.sensor_id,
                 grid=event.grid.code if event.grid else None, incident=event.incident_id)
