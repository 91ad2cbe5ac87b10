"""`xueliang run`: builds every part from the config and runs them on one event loop.

The parts live in the packages: the cameras (`bridge/cameras.py`: each a decoder thread, its
analysis stage and its event building; one inference thread shared by all), the sensors, the
event sink (`bridge/sink.py`: merge, suppression, the outbox, then the hub and the dispatcher),
the Kafka dispatcher, feedback, cluster mode and the API. This module connects them, starts and
stops their tasks and owns the signals. Frames may be dropped, and are counted; events are never
dropped: each is committed to the outbox before it is published anywhere.
"""
from __future__ import annotations

import asyncio
import signal
import time

import structlog
import uvicorn
from prometheus_client import REGISTRY

from bridge.cameras import CameraRuntime, Cameras
from bridge.http.app import ApiState, create_app
from bridge.http.console.map_api import camera_locations
from bridge.store.dead_letters import DeadLetterStore
from bridge.store.audit import ConsoleDb
from bridge.http.auth import Sessions, TokenStore
from bridge.kafka.dispatch import KafkaDispatcher
from bridge.feedback.messages import SuppressionGate
from bridge.feedback.consumer import FeedbackConsumer
from bridge.feedback.work_orders import WorkOrderLog
from bridge.http.hub import Hub
from bridge.resume import carry_over
from bridge.sink import EventSink
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from detectors.batching import InferenceBatcher
from ingest.ingest_metrics import CameraCollector
from xueliang.stacks import log_stacks, wait_bounded
from bridge.merging.over_kafka import KafkaMergeStage
from bridge.kafka.camera_ownership import CameraOwnership, ClusterRecords
from bridge.kafka.camera_registry import ensure_cluster_topics
from xueliang.cluster_cameras import registry_camera_parser
from bridge.kafka.sensor_partitions import SensorStage
from xueliang.config import CameraConfig, ServiceConfig
from bridge.http.live.console_live import ConsoleLive
from bridge.bridge_metrics import CLUSTER_ADOPTED, RESTART_INCIDENTS
from bridge.feedback.incident_directory import IncidentDirectory
from bridge.feedback.handler import FeedbackHandler
from bridge.store.upkeep import Reliability
from bridge.sensor_feed import SensorRuntime
from xueliang.backtest_wiring import Bench, apply_saved
from xueliang.wiring import Core, build_core

log = structlog.get_logger(__name__)


class Service:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.ready = False
        self.stopping = asyncio.Event()
        self.store: EventStore | None = None
        self.rel: Reliability | None = None  # made with the store in run()
        self.sink: EventSink | None = None  # made with the store in run()
        self.fleet: Cameras | None = None  # made with the core in run()
        self.hub = Hub()
        self.api_port: int | None = None
        self._inference = InferenceBatcher(cfg.model.batch.max_size, cfg.model.batch.max_wait_ms / 1000)
        self._collector: CameraCollector | None = None
        self.sensors: SensorRuntime | None = None
        self.deadletters: DeadLetterStore | None = None
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
        self.live: ConsoleLive | None = None  # live video, overlay, availability

    async def run(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(cfg.outbox_path, fsync=cfg.outbox.fsync)
        sink = self.sink = EventSink(self.store, self.hub, self.gate)
        self.rel = Reliability(cfg, self.store, sink.stored)  # disk guard, held events, retention, readiness
        sink.writer = self.rel.writer
        self.gate.until.update(await self.store.suppressions(time.time()))
        runs = (lambda: {c.config.id for c in self.cameras}) if cfg.cluster.enabled else {c.id for c in cfg.cameras}
        self.work_orders = WorkOrderLog(cfg.console_db_path)  # feedback's work-order states, for the clocks
        self.feedback = FeedbackHandler(cfg.feedback, self.store, self.gate, runs, sink.publish,
                                        work_orders=self.work_orders)
        console_db = ConsoleDb(cfg.console_db_path)
        running_versions = await asyncio.to_thread(apply_saved, cfg, console_db)
        core = self.core = await asyncio.to_thread(build_core, cfg)
        core.evidence = self.rel.evidence(core.evidence)
        fleet = self.fleet = Cameras(
            lambda cam: core.camera(cfg, cam), self._inference, cfg.video, sink.publish, self.feedback,
            worker=self.worker, handover_confirm_s=cfg.cluster.handover_confirm_s,
            status_interval_s=cfg.cluster.status_interval_s, drain=sink.drain, count_adopted=CLUSTER_ADOPTED.inc)
        if cfg.sensors.devices:
            self.deadletters = DeadLetterStore(cfg.deadletters_path, max_rows=cfg.sensors.deadletters.max_rows)
            self.sensors = SensorRuntime(cfg, core.factory, self.deadletters, sink.publish,
                                         lambda cams, label: fleet.snapshot(core.evidence, cams, label))
            try:
                await self.sensors.start()  # wrong credentials end the start-up here, with the broker's reason
            except BaseException:
                await self._shutdown([], None)
                raise
        sink.merge = None if cfg.cluster.enabled else core.merge  # clustered, the merge runs on the incidents topic
        for cam in cfg.cameras:
            fleet.add(cam)
        if cfg.restart.carry_over and not cfg.cluster.enabled:  # clustered, the state topic carries them
            await carry_over(cfg.outbox_path, cameras={c.config.id: c.stage for c in fleet.running},
                             sensors=self.sensors, merge=sink.merge, gate=self.gate, publish=sink.publish,
                             confirm_s=cfg.restart.confirm_s,
                             count=lambda outcome, n: RESTART_INCIDENTS.labels(outcome).inc(n))
        self._collector = CameraCollector(fleet.collected)
        REGISTRY.register(self._collector)

        fleet.start_loops()
        self.live = ConsoleLive(cfg, lambda: self.cameras, core.factory.grid, self.worker or "service")
        tasks = self.rel.tasks() + self.live.start()
        if self.cameras or cfg.cluster.enabled:
            tasks.append(asyncio.create_task(fleet.health_loop(), name="camera-health"))
        if cfg.kafka.bootstrap_servers:
            kafka = cfg.kafka
            if cfg.cluster.enabled:  # this worker's incidents go to the merge stage's topic, not to dispatch
                kafka = kafka.model_copy(update={"topic": cfg.cluster.incidents_topic,
                                                 "feedback_group": f"{kafka.feedback_group}-{self.worker}"})
                tasks += await self._start_cluster()
            sink.dispatcher = KafkaDispatcher(self.store, kafka)
            tasks.append(asyncio.create_task(sink.dispatcher.run(), name="dispatcher"))
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
                                      fleet.latest_image, deadletters=self.deadletters,
                                      sensors=self.sensors.views if self.sensors is not None else None,
                                      auth=auth, grid=core.factory.grid, tuning=self.bench,
                                      cors_origins=cfg.api.cors_origins,
                                      readiness=self.rel.readiness(lambda: self.ready, lambda: sink.dispatcher,
                                                                   lambda: [c.view().state for c in self.cameras]),
                                      notify_dispatch=lambda: sink.dispatcher.notify() if sink.dispatcher else None,
                                      plate_role=cfg.privacy.plate_role, live=self.live.features,
                                      map_config=cfg.api.map,
                                      locations=lambda: camera_locations(c.config for c in self.cameras),
                                      catalogue=core.factory.catalogue, clocks=cfg.api.clocks,
                                      work_orders=self.work_orders, publish=sink.publish))
            server = uvicorn.Server(uvicorn.Config(app, host=cfg.api.host, port=cfg.api.port, log_config=None,
                                                   access_log=False, lifespan="off"))
            server.install_signal_handlers = lambda: None  # the service owns SIGINT/SIGTERM
            tasks.append(asyncio.create_task(server.serve(), name="api"))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, log_stacks, "SIGUSR1")
        fleet.start_decoders()
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
        loops = await self.fleet.stop() if self.fleet is not None else []
        if server is not None:
            server.should_exit = True
        self.hub.close()
        if self.feedback is not None:
            self.feedback.close()
        for t in tasks:
            if t.get_name() != "api":
                t.cancel()
        await wait_bounded(tasks, 10.0, "tasks")
        await wait_bounded(loops, 10.0, "camera loops")
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


    @property
    def cameras(self) -> list[CameraRuntime]:
        """The cameras running now (cluster mode: those the group assigned to this worker)."""
        return self.fleet.running if self.fleet is not None else []

    async def apply_camera(self, cam_cfg: CameraConfig) -> None:
        """Run one camera with a new config (the tuning bench); the config keeps it for the next start."""
        self.cfg.cameras = [cam_cfg if c.id == cam_cfg.id else c for c in self.cfg.cameras]
        await self.fleet.apply(cam_cfg)

    async def _start_cluster(self) -> list[asyncio.Task]:
        """Cluster mode: the consumer group's assignment starts and stops this worker's cameras."""
        c = self.cfg.cluster
        counts = await ensure_cluster_topics(self.cfg.kafka.bootstrap_servers, c)
        self.records = self.fleet.records = ClusterRecords(self.cfg.kafka, c, self.worker)
        await self.records.start()
        self.ownership = CameraOwnership(self.cfg.kafka, c, self.fleet, self.worker, registry_camera_parser(self.cfg))
        self.kafka_merge = KafkaMergeStage(
            self.cfg.kafka, self.cfg.merge, source_topic=c.incidents_topic, group=c.merge_group, worker=self.worker,
            exactly_once=c.exactly_once, session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms)
        log.info("cluster.joining", worker=self.worker, group=c.group, merge_group=c.merge_group)
        tasks = [asyncio.create_task(self.ownership.run(), name="cluster-ownership"),
                 asyncio.create_task(self.kafka_merge.run(), name="cluster-merge"),
                 asyncio.create_task(self.fleet.status_loop(), name="cluster-status")]
        if self.sensors is not None:
            stage = SensorStage(self.cfg.kafka, c, self.sensors, self.worker, counts[c.readings_topic])
            await stage.start()
            tasks.append(asyncio.create_task(stage.run(), name="cluster-sensors"))
        return tasks
