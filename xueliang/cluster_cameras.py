"""The root's reading of a camera from the cluster's registry topic, given to `CameraOwnership`:
the record's JSON as a `CameraConfig`, checked against the rest of the service's config."""
from __future__ import annotations

from bridge.events.catalogue import Catalogue
from bridge.kafka.camera_ownership import CameraParser
from xueliang.config import CameraConfig, ServiceConfig, camera_problems


def registry_camera_parser(cfg: ServiceConfig) -> CameraParser:
    """Raises pydantic's ValidationError on a malformed record; returns the camera and its problems."""
    catalogue = Catalogue.load(cfg.catalogue)

    def parse(value: bytes) -> tuple[CameraConfig, list[tuple[str, str]]]:
        cam = CameraConfig.model_validate_json(value)
        return cam, camera_problems(cfg, cam, "camera", catalogue)

    return parse
