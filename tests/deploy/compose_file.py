"""deploy/compose.yaml as Docker Compose reads it (variables interpolated, merge keys resolved, replicas counted),
and the Dockerfile facts its services rely on (entrypoint, work dir, PATH)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
# the image the Dockerfile's default target is tagged with (its header comment: docker build -t ... .)
APP_IMAGE = "context_chat_backend:cpu"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, and $$ for a literal $
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class ComposeError(Exception):
    """Compose would refuse the file with these variables (a required one is missing)."""


@dataclass(frozen=True)
class ComposeService:
    """One service of the file, after interpolation."""

    name: str
    image: str
    entrypoint: list[str] | None
    command: list[str] | None
    environment: dict[str, str]
    replicas: int
    volumes: list[str]

    @property
    def bind_mounts(self) -> dict[str, Path]:
        """Container path -> host path of each `./host:/container[:ro]` volume (relative to deploy/)."""
        mounts = {}
        for volume in self.volumes:
            source, target, *_ = volume.split(":")
            if source.startswith("."):
                mounts[target] = (DEPLOY / source).resolve()
        return mounts


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's variable interpolation over the file's text."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if name is None:
            return "$"
        current = variables.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if missing and op is not None and op.endswith("?"):
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if missing and op is not None:
            return arg
        return current or ""

    return _VARIABLE.sub(value, text)


def raw_compose(variables: Mapping[str, str]) -> dict[str, Any]:
    """The file as a mapping, variables interpolated, YAML merge keys (`<<`) resolved."""
    document: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), variables))
    # a round trip through JSON drops YAML's shared anchors, so the schema sees plain values
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def _words(value: Any) -> list[str] | None:
    if value is None:
        return None
    return value.split() if isinstance(value, str) else [str(word) for word in value]


def _environment(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return dict(item.split("=", 1) for item in value)
    return {name: "" if v is None else str(v) for name, v in (value or {}).items()}


def load_services(variables: Mapping[str, str]) -> dict[str, ComposeService]:
    """Every service by name."""
    services = {}
    for name, spec in raw_compose(variables)["services"].items():
        services[name] = ComposeService(
            name=name,
            image=spec["image"],
            entrypoint=_words(spec.get("entrypoint")),
            command=_words(spec.get("command")),
            environment=_environment(spec.get("environment")),
            replicas=int(spec.get("deploy", {}).get("replicas", 1)),
            volumes=list(spec.get("volumes", [])),
        )
    return services


def app_services(services: Mapping[str, ComposeService]) -> list[ComposeService]:
    """The services that run our image with its own entrypoint (the app roles), in file order."""
    return [s for s in services.values() if s.image == APP_IMAGE and s.entrypoint is None]


@dataclass(frozen=True)
class DockerfileFacts:
    """What the last stage of the Dockerfile (the default target) gives every container."""

    entrypoint: list[str]
    workdir: str
    path_prefix: str

    @classmethod
    def read(cls, dockerfile: Path = REPO / "Dockerfile") -> DockerfileFacts:
        text = dockerfile.read_text(encoding="utf-8")
        last_stage = text[text.rindex("\nFROM ") :]
        entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])$", last_stage, re.M)[-1])
        workdir = re.findall(r"^WORKDIR (\S+)$", last_stage, re.M)[-1]
        path = re.findall(r"PATH=(\S+):\$PATH", last_stage)[-1]
        return cls(entrypoint=entrypoint, workdir=workdir, path_prefix=path)
