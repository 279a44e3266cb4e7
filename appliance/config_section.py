"""The base of every config.yaml section: an unknown key is an error, and a loaded section cannot change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
