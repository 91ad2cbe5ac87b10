"""The API token file from the command line (`xueliang tokens`): list, add, revoke; each change is
recorded in the console's audit log. The tokens themselves are shown once, never stored."""
from __future__ import annotations

from pathlib import Path

import yaml

from bridge.http.auth import ApiToken, Role, new_token, write_token_file
from bridge.store.audit import ConsoleDb


def token_lines(tokens: list[ApiToken]) -> list[str]:
    """One line per token: id, role, holder, cameras, when made (never the secret or its hash)."""
    return [f"{t.id}  {t.role:<8} {t.name:<20} cameras={','.join(t.cameras) if t.cameras else '-'}  "
            f"created={t.created_at}" for t in tokens]


def revoke_tokens(path: Path, db_path: Path, tokens: list[ApiToken], name: str, actor: str) -> int:
    """Remove the tokens held by `name` or with id `name`; how many (0: none, nothing written)."""
    keep = [t for t in tokens if t.name != name and t.id != name]
    if len(keep) < len(tokens):
        write_token_file(path, keep)
        ConsoleDb(db_path).record(actor, "token.revoke", name, {"count": len(tokens) - len(keep)})
    return len(tokens) - len(keep)


def cameras_problem(role: str, cameras: list[str]) -> str | None:
    """What is wrong with the cameras given to a token of `role`, or None."""
    if role == "operator" and not cameras:
        return "an operator needs the camera ids it may tune (or '*')"
    if role != "operator" and cameras:
        return f"only operators are assigned cameras, not {role}s"
    return None


def add_token(path: Path, db_path: Path, tokens: list[ApiToken], name: str, role: Role, cameras: list[str],
              actor: str) -> tuple[str, ApiToken]:
    """A new token written to the file after `tokens`: (the token, to show once; its stored record)."""
    token, record = new_token(name, role, cameras)
    write_token_file(path, [*tokens, record])
    ConsoleDb(db_path).record(actor, "token.add", record.id, {"name": name, "role": role, "cameras": cameras})
    return token, record


def token_yaml(record: ApiToken) -> str:
    """The hashed record as YAML for `api.auth.tokens` in a config file."""
    return yaml.safe_dump([record.model_dump(exclude_none=True)], allow_unicode=True, sort_keys=False)
