"""The API app in-process with everything real behind it: outbox, evidence store, grid layer,
token store, audit log and the tuning bench over a real config (the bundled table clip)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bridge.http.app import ApiState, CameraView, create_app
from bridge.store.audit import ConsoleDb
from bridge.store.availability import AvailabilityLog, Place
from bridge.http.auth import Sessions, TokenStore, new_token
from bridge.events.evidence_store import LocalEvidenceStore
from bridge.location.grid import GridIndex
from bridge.http.hub import Hub
from bridge.http.live.routes import LiveFeatures
from bridge.store.outbox import EventStore
from bridge.http.security import AuthContext
from tests.helpers import DATA_DIR, REPO
from xueliang.config import CameraConfig, load_config
from xueliang.backtest_wiring import Bench

BUNDLED_CLIP = REPO / "configs" / "media" / "table-stays.mp4"


def bench_config(tmp_path: Path, clip: Path = BUNDLED_CLIP, analysis_fps: float = 1) -> Path:
    doc = yaml.safe_load((REPO / "configs" / "examples" / "table-dwell.yaml").read_text())
    cam = doc["cameras"][0]
    cam.update(url=str(clip), analysis_fps=analysis_fps)
    doc["cameras"].append({"id": "gate", "url": str(clip), "location": cam["location"]})
    doc["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    doc["data_dir"] = str(DATA_DIR)
    doc["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    doc["evidence"] = {"dir": str(tmp_path / "evidence")}
    doc["api"] = {"console_db": str(tmp_path / "console.sqlite3"), "auth": {"tokens_file": str(tmp_path / "tokens.yaml")}}
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@dataclass
class ConsoleApp:
    app: object
    store: EventStore
    bench: Bench
    db: ConsoleDb
    tokens: dict[str, str]
    applied: list[CameraConfig] = field(default_factory=list)
    availability: AvailabilityLog | None = None

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def close(self) -> None:
        if self.availability is not None:
            self.availability.close()
        self.bench.close()
        self.store.close()


def make_console_app(tmp_path: Path) -> ConsoleApp:
    cfg = load_config(bench_config(tmp_path))
    records, tokens = [], {}
    for who, role, cams in [("admin", "admin", []), ("operator", "operator", ["table"]),
                            ("gate-operator", "operator", ["gate"]), ("viewer", "viewer", [])]:
        token, rec = new_token(who, role, cams)
        records.append(rec)
        tokens[who] = token
    db = ConsoleDb(cfg.console_db_path)
    store = EventStore(cfg.outbox_path)
    applied: list[CameraConfig] = []

    async def apply(cam: CameraConfig) -> None:  # the running service restarts that camera; here: record it
        applied.append(cam)

    bench = Bench(cfg, db, apply)
    grid = GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs)
    cams = [CameraView(id=c.id, name=c.name, url=c.url, state="online", since=0, last_frame_at=None, last_error=None,
                       reconnects=0, frames_decoded=0, frames_sampled=0, frames_dropped=0, frames_analysed=0)
            for c in cfg.cameras]
    auth = AuthContext(TokenStore(records), Sessions(3600), db)
    # Availability from the console db; no restreamer (live video off) and no analysed frames here.
    live = LiveFeatures(availability=AvailabilityLog(cfg.console_db_path),
                        places=lambda: [(c.id, c.name, Place()) for c in cfg.cameras])
    app = create_app(ApiState(store, Hub(), LocalEvidenceStore(cfg.evidence_dir), lambda: cams, lambda: True,
                              auth=auth, grid=grid, tuning=bench, live=live))
    return ConsoleApp(app, store, bench, db, tokens, applied, live.availability)
