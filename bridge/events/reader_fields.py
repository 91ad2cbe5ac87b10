"""Second-stage readings into events, under the deployment's plate privacy.

`privacy.plates`: `on` puts the plate text and the plate crop in the event; `hashed` a keyed hash
of the text (HMAC-SHA256 under `privacy.plate_key`) and no crop, since the crop shows the text;
`off` reads no plates at all (the config check refuses plate readers). Log lines say what
`privacy.log_plates` allows: nothing by default.
"""
from __future__ import annotations

import hashlib
import hmac

import cv2

from bridge.events.model import Event, PlateRef, StateRef
from bridge.events.evidence_store import EvidenceStore, StoredItem
from detectors.readers import Reading
from detectors.readers.reader_config import PrivacyConfig


class PlatePrivacy:
    def __init__(self, cfg: PrivacyConfig) -> None:
        self.cfg = cfg
        self._key = cfg.plate_key.get_secret_value().encode() if cfg.plate_key is not None else None

    def hash(self, text: str) -> str:
        if self._key is None:
            raise ValueError("privacy.plate_key is not set: plate numbers cannot be hashed")
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def log_fields(self, reading: Reading) -> dict:
        """What a log line may carry about a reading: states in full; plates as `log_plates` says."""
        if reading.kind != "plate":
            return {"value": reading.value}
        colour = {"colour": reading.attributes.get("colour")}
        if self.cfg.log_plates == "on":
            return colour | {"plate": reading.value}
        if self.cfg.log_plates == "hashed":
            return colour | {"plate_hash": self.hash(reading.value)}
        return colour

    def plate_ref(self, reading: Reading) -> PlateRef:
        text = reading.value if self.cfg.plates == "on" else None
        digest = self.hash(reading.value) if self.cfg.plates == "hashed" else None
        return PlateRef(text=text, text_hash=digest, colour=reading.attributes.get("colour", "unknown"),
                        confidence=round(min(1.0, max(0.0, reading.confidence)), 4),
                        engine=reading.attributes.get("engine", "unknown"))


class ReadingsToEvents:
    """Adds a change's readings to its event; the plate crop is stored once per reading."""

    def __init__(self, privacy: PrivacyConfig, evidence: EvidenceStore | None) -> None:
        self.privacy = PlatePrivacy(privacy)
        self.evidence = evidence
        self._crops: dict[tuple, StoredItem] = {}

    def evidence_items(self, readings: list[Reading]) -> dict[str, StoredItem]:
        """The plate crop as evidence (`privacy.plates: on` only)."""
        if self.evidence is None or self.privacy.cfg.plates != "on":
            return {}
        for r in readings:
            if r.kind == "plate" and r.crop is not None:
                key = (r.reader, r.value, r.at, r.confidence)
                if key not in self._crops:
                    if len(self._crops) > 256:
                        self._crops.clear()
                    ok, buf = cv2.imencode(".jpg", r.crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    if not ok:
                        raise RuntimeError(f"JPEG encoding of a plate crop of shape {r.crop.shape} failed")
                    self._crops[key] = self.evidence.put(buf.tobytes(), "jpg")
                return {"plate": self._crops[key]}
        return {}

    def apply(self, event: Event, readings: list[Reading]) -> Event:
        if not readings:
            return event
        update: dict = {}
        for r in readings:
            if r.kind == "plate" and self.privacy.cfg.plates != "off":
                update["plate"] = self.privacy.plate_ref(r)
            elif r.kind == "state":
                attrs = update.setdefault("attributes", dict(event.attributes))
                attrs[r.reader] = StateRef(value=r.value, confidence=round(min(1.0, max(0.0, r.confidence)), 4))
        return event.model_copy(update=update)
