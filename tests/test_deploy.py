"""deploy/compose.yaml cannot run here (no Docker): check what can go wrong in it without Docker.

Every XUELIANG__ variable names a field of the config and holds a value that field accepts,
every `xueliang` command parses, every path in the image it names exists in what the Dockerfile
copies, and the sample camera registry is a valid config whose cameras all lie in a grid.
"""
from __future__ import annotations

import re
import types
import typing

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from bridge.location.grid import GridIndex
from tests.helpers import REPO
from xueliang import config_env
from xueliang.cli import build_parser
from xueliang.config import ServiceConfig, load_config

COMPOSE = REPO / "deploy" / "compose.yaml"
CAMERAS = REPO / "deploy" / "cameras.yaml"
# The cluster section is being added on another branch (issue 8); until it is merged its fields
# cannot be checked, so variables under `cluster` are skipped while ServiceConfig has no `cluster`.
# Their names are checked against the fields the design lists (docs/scale-out.md).
PENDING_SECTIONS = {"cluster"}
CLUSTER_FIELDS = {"enabled", "worker_id", "group", "control_topic", "control_partitions", "state_topic", "status_topic",
                  "incidents_topic", "incidents_partitions", "merge_group", "session_timeout_ms",
                  "heartbeat_interval_ms", "handover_confirm_s", "exactly_once"}


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with VAR unset, as a fresh checkout runs it."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def environments() -> list[tuple[str, str, str]]:
    """(service, variable, value) of every service; lists and mappings as compose accepts both."""
    out = []
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        out += [(name, k, interpolate(str(v))) for k, v in env.items()]
    return out


def field_of(path: tuple[str, ...]):
    """The pydantic FieldInfo a config path names, or a reason it names none."""
    model: type[BaseModel] = ServiceConfig
    for i, part in enumerate(path):
        info = model.model_fields.get(part)
        if info is None:
            return None, f"{'.'.join(path[:i + 1])}: no such field in {model.__name__}"
        if i == len(path) - 1:
            return info, ""
        inner = [a for a in (typing.get_args(info.annotation) or (info.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner or isinstance(info.annotation, types.GenericAlias):
            return None, f"{'.'.join(path[:i + 1])} is not a section"
        model = inner[0]
    raise AssertionError("empty path")


def adapter(info) -> TypeAdapter:
    """Validates a value as the field does: its type and its constraints (ge, le, pattern)."""
    return TypeAdapter(typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation)


def test_every_xueliang_variable_names_a_field_and_fits_it():
    envs = [(svc, k, v) for svc, k, v in environments() if k.startswith(config_env.PREFIX)]
    assert len({k for _, k, _ in envs}) >= 8, "the workers are configured by XUELIANG__ variables"
    problems, pending = [], []
    for svc, name, (_, path, value) in ((svc, k, config_env.overrides({k: v}, ServiceConfig)[0]) for svc, k, v in envs):
        if path[0] in PENDING_SECTIONS and path[0] not in ServiceConfig.model_fields:
            if len(path) != 2 or path[1] not in CLUSTER_FIELDS:
                problems.append(f"{svc}: {name}: not a field of the cluster section's design")
            pending.append(name)
            continue
        info, why = field_of(path)
        if info is None:
            problems.append(f"{svc}: {name}: {why}")
            continue
        try:
            adapter(info).validate_python(value)
        except ValidationError as exc:
            problems.append(f"{svc}: {name}={value!r}: {exc.errors()[0]['msg']}")
    assert not problems, problems
    if pending:
        print(f"not checked until the cluster section exists: {sorted(set(pending))}")


def test_field_check_itself_catches_a_misspelt_or_mistyped_variable():
    assert field_of(("kafka", "bootstrap_server"))[0] is None
    assert field_of(("cameras", "url"))[1] == "cameras is not a section"
    info, _ = field_of(("api", "port"))
    with pytest.raises(ValidationError):
        adapter(info).validate_python(70000)


def test_workers_take_their_config_from_the_environment_alone():
    worker = compose()["services"]["worker"]
    assert worker["command"] == ["xueliang", "run"]
    assert "XUELIANG_CONFIG" not in worker["environment"]
    assert worker["environment"]["XUELIANG__KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert str(worker["environment"]["XUELIANG__CLUSTER__ENABLED"]).lower() == "true"
    assert "XUELIANG__CLUSTER__WORKER_ID" not in worker["environment"], "replicas would share one id"


def test_every_xueliang_command_parses():
    subcommands = build_parser()._subparsers._group_actions[0].choices
    for name, svc in compose()["services"].items():
        cmd = svc.get("command")
        if not (isinstance(cmd, list) and cmd[0] == "xueliang"):
            continue
        if cmd[1] not in subcommands:
            # `xueliang cameras publish` is added with the cluster code (issue 8, another branch).
            assert cmd[1:3] == ["cameras", "publish"], f"{name}: unknown command {cmd}"
            continue
        build_parser().parse_args(cmd[1:])


def test_paths_in_the_image_exist_in_what_the_dockerfile_copies():
    copied = re.findall(r"^COPY (\S+) \1$", (REPO / "Dockerfile").read_text(), flags=re.M)
    text = COMPOSE.read_text() + CAMERAS.read_text()
    paths = set(re.findall(r"/app/(\S+?)(?=[\s'\"]|$)", text))
    assert paths, "the sample uses files the image carries"
    for p in paths:
        assert p.split("/")[0] in copied, f"/app/{p}: the Dockerfile does not copy {p.split('/')[0]}/"
        assert (REPO / p).exists(), f"/app/{p}: no {p} in the repository"


def test_the_topics_service_creates_the_topics_the_config_names():
    script = compose()["services"]["topics"]["command"][0]
    created = set(re.findall(r"--topic (\S+)", script))
    defaults = ServiceConfig.model_fields["kafka"].default_factory()
    wanted = {defaults.topic, defaults.feedback_topic}
    if "cluster" in ServiceConfig.model_fields:
        cluster = ServiceConfig.model_fields["cluster"].default_factory()
        wanted |= {cluster.control_topic, cluster.state_topic, cluster.status_topic, cluster.incidents_topic}
    assert wanted <= created, wanted - created


def test_the_sample_registry_is_a_valid_config_with_every_camera_in_a_grid(tmp_path):
    local = tmp_path / "cameras.yaml"  # the container's /app is this repository
    local.write_text(CAMERAS.read_text(encoding="utf-8").replace("/app/", f"{REPO}/"), encoding="utf-8")
    cfg = load_config(local, environ={})
    assert len(cfg.cameras) >= 10 and all(c.rules for c in cfg.cameras)
    index = GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs)
    outside = [c.id for c in cfg.cameras
               if index.resolve(c.location.lon, c.location.lat, c.location.crs)[0] is None]
    assert not outside, outside


def test_the_worker_environment_alone_is_a_config_once_cameras_come_from_the_registry(tmp_path):
    # Validate the worker's variables as the worker will: no config file, no cameras (they are the
    # registry's), cluster mode on.
    worker = {k: interpolate(str(v)) for k, v in compose()["services"]["worker"]["environment"].items()}
    worker = {k: v.replace("/app/", f"{REPO}/") for k, v in worker.items()}
    worker["XUELIANG__API__AUTH__TOKENS_FILE"] = str(tmp_path / "tokens.yaml")
    cfg = load_config(None, environ=worker)
    assert cfg.api.host == "0.0.0.0" and cfg.kafka.bootstrap_servers == "kafka:9092"
    assert cfg.cluster.enabled and cfg.cameras == []


def test_the_scale_out_page_shows_its_rendered_diagram_and_names_every_topic():
    page = (REPO / "docs" / "scale-out.md").read_text(encoding="utf-8")
    image = REPO / "docs" / "scale-out.png"
    assert "](scale-out.png)" in page
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    source = (REPO / "docs" / "scale-out.dot").read_text(encoding="utf-8")
    script = compose()["services"]["topics"]["command"][0]
    for topic in set(re.findall(r"--topic (\S+)", script)) - {"xueliang.feedback_actions"}:
        assert topic in source and topic in page, topic
