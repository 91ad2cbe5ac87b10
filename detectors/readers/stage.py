"""Which tracks a camera's readers read, when, and which reading goes with which incident.

`plan` runs with the analysis (cheap: no pixels): a track of a reader's classes that has stood
still `stationary_s` is due, at most `frames` times, `interval_s` apart; a track in an incident
that opens now is due at once. `run` does the reads on the frame (blocking: the pipeline calls
it from `events`, which live runs in a worker thread, never on the event loop). Readings are kept
per track (the best one, by confidence) and an incident keeps the reading it opened with.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from detectors.lifecycle import IncidentChange
from detectors.readers import Reader, Reading
from detectors.readers.reader_config import PlateReaderConfig, ClassifierReaderConfig
from detectors.tracking import Track, iou

log = structlog.get_logger(__name__)

_KEEP_S = 600.0  # readings of tracks gone this long are forgotten


@dataclass
class _TrackState:
    reads: int = 0  # reads in the current round
    round_at: float | None = None  # when the current round began
    last_at: float | None = None
    best: Reading | None = None
    round_best: Reading | None = None
    seen_at: float = 0.0


@dataclass
class ReaderUse:
    """One reader on one camera: its config and its (shared) engine."""

    cfg: PlateReaderConfig | ClassifierReaderConfig
    reader: Reader
    states: dict[tuple[int, int], _TrackState] = field(default_factory=dict)  # (analyser, track id) ->


class ReaderStage:
    def __init__(self, camera_id: str, uses: list[ReaderUse],
                 describe: Callable[[Reading], dict] = lambda r: {"value": r.value}) -> None:
        self.camera_id = camera_id
        self.uses = uses
        self._describe = describe  # what a log line may say about a reading (plate privacy)
        self._due: list[tuple[ReaderUse, tuple[int, int], tuple[float, float, float, float], float]] = []
        self._incidents: dict[str, list[Reading]] = {}
        self._boxes: dict[int, dict[int, tuple]] = {}  # analyser -> track id -> last box

    @property
    def pending(self) -> bool:
        return bool(self._due)

    def classes(self) -> set[str]:
        return {c for u in self.uses for c in u.cfg.classes}

    def plan(self, analyser: int, tracks: list[Track], now: float, changes: list[IncidentChange] = ()) -> None:
        """Mark the tracks of analyser `analyser` that are due for a read on this frame."""
        opening = {t for c in changes if c.status == "opened" for t in c.condition.track_ids}
        self._boxes[analyser] = {t.id: t.last.box for t in tracks}
        for use in self.uses:
            cfg = use.cfg
            for track in tracks:
                if track.label not in cfg.classes or track.last.t != now:  # not seen on this frame
                    continue
                key = (analyser, track.id)
                st = use.states.setdefault(key, _TrackState())
                st.seen_at = now
                if st.round_at is not None and cfg.reread_s is not None and now - st.round_at >= cfg.reread_s:
                    st.reads, st.round_at, st.round_best = 0, None, None  # a new round: states change
                if st.reads >= cfg.frames:
                    continue
                urgent = track.id in opening and st.best is None
                if not urgent:
                    if now - track.still_since(cfg.stationary_iou) < cfg.stationary_s:
                        continue
                    if st.last_at is not None and now - st.last_at < cfg.interval_s:
                        continue
                self._due.append((use, key, track.last.box, now))
        for use in self.uses:  # forget tracks long gone
            for key in [k for k, st in use.states.items() if k[0] == analyser and now - st.seen_at > _KEEP_S]:
                del use.states[key]

    def run(self, image: np.ndarray) -> None:
        """Read every due track on `image` (the full-resolution frame the plan was made on). Blocking."""
        due, self._due = self._due, []
        for use, key, box, now in due:
            st = use.states[key]
            st.reads += 1
            st.last_at = now
            if st.round_at is None:
                st.round_at = now
            crop = _crop(image, box, use.cfg.pad, use.cfg.min_box_px)
            if crop is None:
                continue
            reading = use.reader.read(crop)
            if reading is None or reading.confidence < use.cfg.min_confidence:
                log.debug("reader.nothing", camera=self.camera_id, track=key[1], reader=use.reader.name,
                          read=st.reads)
                continue
            reading = Reading(reading.kind, reading.reader, reading.value, reading.confidence, reading.attributes,
                              reading.crop, now)
            if reading.better_than(st.round_best):
                st.round_best = st.best = reading
            log.info("reader.read", camera=self.camera_id, track=key[1], reader=use.reader.name, read=st.reads,
                     confidence=round(reading.confidence, 3), **self._describe(reading))

    def readings(self, analyser: int, change: IncidentChange) -> list[Reading]:
        """The readings an incident's event carries: those of its main track (the condition's box),
        fixed when it opens so that its later events say the same."""
        iid = change.incident_id
        out = self._incidents.get(iid) if change.status != "opened" else None
        if not out:  # opening, or nothing was readable when it opened: what the track has now
            out = self._current(analyser, change)
        if change.status == "cleared":
            self._incidents.pop(iid, None)
        else:
            self._incidents[iid] = out
        return out

    def _current(self, analyser: int, change: IncidentChange) -> list[Reading]:
        cond, out = change.condition, []
        ids = cond.track_ids or ((cond.subject,) if cond.subject is not None else ())
        for use in self.uses:
            found = [(tid, use.states.get((analyser, tid))) for tid in ids]
            found = [(tid, st) for tid, st in found if st is not None and st.best is not None]
            if not found:
                continue
            if cond.bbox is not None and len(found) > 1:  # the main subject: the box the event shows
                boxes = self._boxes.get(analyser, {})
                found.sort(key=lambda f: -iou(boxes.get(f[0], (0, 0, 0, 0)), cond.bbox))
            out.append(found[0][1].best)
        return out



def _crop(image: np.ndarray, box: tuple[float, float, float, float], pad: float, min_px: int) -> np.ndarray | None:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    if min(x2 - x1, y2 - y1) < min_px:
        return None
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    x1, y1 = max(0, int(x1 - px)), max(0, int(y1 - py))
    x2, y2 = min(w, int(x2 + px + 1)), min(h, int(y2 + py + 1))
    return np.ascontiguousarray(image[y1:y2, x1:x2])
