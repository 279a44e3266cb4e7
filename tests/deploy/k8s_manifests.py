"""deploy/k8s/: the manifests kustomization.yaml lists, and what each app container of them gets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from compose_file import DEPLOY

K8S = DEPLOY / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"


def manifest_files() -> list[Path]:
    """The files kustomization.yaml applies, in its order."""
    listed: list[str] = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))["resources"]
    return [K8S / name for name in listed]


def resources() -> list[dict[str, Any]]:
    """Every document of every listed file."""
    found = []
    for path in manifest_files():
        found += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name} is declared {len(matches)} times in deploy/k8s"
    return matches[0]


@dataclass(frozen=True)
class Workload:
    """One Deployment or StatefulSet's first container, with the environment it ends up with."""

    name: str
    replicas: int
    container: dict[str, Any]
    volumes: dict[str, dict[str, Any]]

    def environment(self) -> dict[str, str]:
        """envFrom (ConfigMap data, Secret stringData) then env, as the kubelet merges them."""
        env: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(resource("ConfigMap", source["configMapRef"]["name"])["data"])
            else:
                env.update(resource("Secret", source["secretRef"]["name"])["stringData"])
        for item in self.container.get("env", []):
            env[item["name"]] = item.get("value", "<from a reference>")
        return env


def workloads() -> dict[str, Workload]:
    found = {}
    for r in resources():
        if r["kind"] in ("Deployment", "StatefulSet"):
            pod = r["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            found[r["metadata"]["name"]] = Workload(
                r["metadata"]["name"], r["spec"]["replicas"], pod["containers"][0], volumes
            )
    return found
