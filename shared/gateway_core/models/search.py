"""How a caller narrows a search (shared by the HTTP models, the services and the vector stores)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

Scalar = str | int | float | bool
METADATA_KEY_PATTERN = re.compile(r"[\w-]{1,64}")  # \w is Unicode: keys like 部署 are fine


class SearchFilter(BaseModel):
    """Optional narrowing of a search; the tenant is never part of it."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[str] | None = None
    # The chunks (by chunk id, the id graph facts cite as their source) a search may return.
    chunk_ids: list[str] | None = None
    # Equality on payload["metadata"][key].
    metadata: dict[str, str | int | float | bool] | None = None

    @field_validator("metadata")
    @classmethod
    def _keys_are_plain(cls, value: dict[str, Scalar] | None) -> dict[str, Scalar] | None:
        # Keys become payload paths: a dot or bracket would reach outside "metadata".
        for key in value or {}:
            if not METADATA_KEY_PATTERN.fullmatch(key):
                raise ValueError(f"metadata key {key!r} must be 1-64 letters, digits, '_' or '-'")
        return value
