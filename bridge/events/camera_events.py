"""One camera's incident changes into events: the evidence and clip policy.

For each change of `detectors/camera_stage.py`: an annotated snapshot and a crop of the subject,
the scene before the object appeared (dumping and pile rules: from the packet ring, else the
scene model's reference), the readings of the subject (plate, states; `reader_fields.py`), then
the `Event` (`builder.py`: category, grid, location). A clip (`clip.before_s` ahead of the
opening to `clip.after_s` behind it, cut from the packet ring without re-encoding) goes out as an
`updated` event of its incident once its tail is recorded, or with the clear if that comes first.
Verify requests are answered here too, from the camera's newest frame.

The camera config is taken duck-typed (the composition root owns its model): `id`, `location`,
`zones`, `rules`, `clip`, `scene`, `uses_scene`, `ground`, and `detection_hash(model, tracker)`.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import cv2

from bridge.events.builder import CameraContext, EventFactory
from bridge.events.evidence_store import EvidenceStore
from bridge.events.model import Event
from bridge.events.reader_fields import ReadingsToEvents
from bridge.feedback.verify import PendingVerification, verification_event
from bridge.location.homography import GroundProjector
from detectors.annotate import annotated_jpeg, crop_jpeg
from detectors.camera_stage import CameraStage
from detectors.detector_config import FULL_FRAME_ZONE, ModelConfig, TrackerConfig
from detectors.lifecycle import IncidentChange
from detectors.readers.reader_config import PrivacyConfig
from ingest.clips import PacketRing
from ingest.frame import Frame


class CameraEvents:
    def __init__(self, stage: CameraStage, camera: Any, factory: EventFactory, evidence: EvidenceStore | None,
                 privacy: PrivacyConfig, model: ModelConfig, tracker: TrackerConfig) -> None:
        self.stage = stage
        self.factory = factory
        self.evidence = evidence
        self.context = CameraContext(
            camera_id=camera.id,
            location=camera.location,
            categories=stage.categories,
            model=model.name,
            config_hash=camera.detection_hash(model, tracker),
            rule_models=stage.rule_models,
            model_sha256=stage.model_sha256,
            ground=GroundProjector(camera.ground) if camera.ground else None,
        )
        self._zones = {z.name: z.polygon for z in [*camera.zones, FULL_FRAME_ZONE]}
        clip = camera.clip
        # Enough for `before_s` ahead of an opening, `after_s` behind it, and a long GOP.
        # Dumping shows the scene before the object appeared: keep back to there too.
        self._before_rules = {r.id for r in camera.rules if r.type in ("dumping", "pile")}
        # A scene region is reported some seconds after it appeared (it must first stand still).
        lag = 3 * camera.scene.short_tau_s + camera.scene.confirm_s if camera.uses_scene else 0.0
        keep = max([clip.before_s + clip.after_s, *(r.min_left_s + r.carrier_window_s + 5.0 + lag
                                                     for r in camera.rules if r.type == "dumping")])
        # The decoder fills it (`ingest/worker.py`, `ingest/video.py`); clips and before pictures are cut from it.
        self.ring = PacketRing(keep + 10.0, camera.id) if (clip.enabled or self._before_rules) and stage.stages else None
        self._clip = clip
        self._awaiting: dict[str, tuple[IncidentChange, float]] = {}  # incident -> (opened, media time)
        self._to_events = ReadingsToEvents(privacy, evidence)

    @property
    def clips_pending(self) -> bool:
        """A clip waits for its tail: live then builds events on every frame until it is cut."""
        return bool(self._awaiting)

    def events(self, frame: Frame | None, changes: list[IncidentChange], occurred_at: datetime,
               media_time_s: float | None = None) -> list[Event]:
        """Blocking (the reads, JPEG encode and write): live runs it in a thread when there are
        changes, clips waiting or reads due. `frame` is None for changes without one (camera offline)."""
        out = []
        media_now = frame.media_time_s if frame is not None else None
        if frame is not None:
            self.stage.read(frame.image)
        for change in changes:
            stored = {}
            readings = self.stage.readings(change)
            if change.status == "cleared" and change.incident_id in self._awaiting:
                # Shorter than the clip's tail: the clip goes with the clear, cut up to now.
                opened, m = self._awaiting.pop(change.incident_id)
                stored |= self._cut(m, media_now)
            if self.evidence is not None and frame is not None:
                bbox = change.condition.bbox
                jpeg = annotated_jpeg(frame.image, bbox, self._zones.get(change.zone or ""),
                                      f"{change.rule_id} {change.condition.score:.2f}")
                stored["snapshot"] = self.evidence.put(jpeg, "jpg")
                if bbox:
                    stored["crop"] = self.evidence.put(crop_jpeg(frame.image, bbox), "jpg")
                if change.status == "opened" and change.rule_id in self._before_rules:
                    stored |= self._before(change, frame)
            stored |= self._to_events.evidence_items(readings)
            out.append(self._to_events.apply(self.factory.make(change, self.context, occurred_at, stored, media_time_s),
                                             readings))
            if change.status == "opened" and self._clip.enabled and self.ring is not None \
                    and media_now is not None and change.rule_id not in self.stage.health.rule_ids:
                self._awaiting[change.incident_id] = (change, media_now)
        # A clip whose tail has been recorded goes out as an update of its incident.
        for iid, (opened, m) in list(self._awaiting.items()):
            if media_now is not None and media_now >= m + self._clip.after_s:
                del self._awaiting[iid]
                stored = self._cut(m, media_now)
                if stored:
                    update = replace(opened, status="updated", at=media_now)
                    out.append(self._to_events.apply(
                        self.factory.make(update, self.context, occurred_at, stored, media_time_s),
                        self.stage.readings(update)))
        return out

    def _before(self, change: IncidentChange, frame: Frame) -> dict:
        """The scene a second before the object appeared, from the packet ring; when the ring does
        not reach back that far (a pile that has stood for minutes), the scene model's reference."""
        image = None
        if self.ring is not None:
            lag = frame.media_time_s - change.at  # the rules' clock may be wall time: go by the distance
            image = self.ring.frame_at(change.condition.since + lag - 1.0)
        scene = self.stage.scene_model
        if image is None and scene is not None and scene.reference_image() is not None:
            h, w = frame.image.shape[:2]
            image = cv2.resize(scene.reference_image(), (w, h), interpolation=cv2.INTER_LINEAR)
        if image is None:
            return {}
        jpeg = annotated_jpeg(image, change.condition.bbox, self._zones.get(change.zone or ""), "before")
        return {"before": self.evidence.put(jpeg, "jpg")}

    def _cut(self, opened_at_media: float, until: float | None) -> dict:
        if self.ring is None or self.evidence is None or until is None:
            return {}
        clip = self.ring.cut(opened_at_media - self._clip.before_s, until)
        return {"clip": self.evidence.put(clip.data, clip.ext)} if clip else {}

    def verification(self, frame: Frame, p: PendingVerification, at: datetime) -> Event:
        """Blocking (JPEG): the answer to a verify request from this frame, with a fresh snapshot."""
        if not self.stage.has_rule(p.rule):
            return verification_event(p, at, None,
                                      reason=f"camera {self.context.camera_id} has no rule {p.rule!r} any more")
        found = max(self.stage.current(p.rule, p.zone), key=lambda c: c.score, default=None)
        bbox = found.bbox if found else None
        stored = {}
        if self.evidence is not None:
            label = f"verify {p.rule}: {'present' if found else 'gone'}"
            stored["snapshot"] = self.evidence.put(
                annotated_jpeg(frame.image, bbox, self._zones.get(p.zone or ""), label), "jpg")
            if bbox:
                stored["crop"] = self.evidence.put(crop_jpeg(frame.image, bbox), "jpg")
        return verification_event(p, at, found is not None, evidence=stored, bbox=bbox,
                                  score=found.score if found else None)
