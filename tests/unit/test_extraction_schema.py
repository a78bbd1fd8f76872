"""The published extraction schema is generated from the models: one source of truth."""

from __future__ import annotations

import json
from importlib import resources

from gateway_core.models.graph import extraction_schema


def test_the_published_schema_is_the_models_schema():
    published = json.loads(resources.files("gateway_core.schemas").joinpath("graph.schema.json").read_text("utf-8"))
    # On failure, regenerate the file: python -m gateway_core.models.graph > shared/gateway_core/schemas/graph.schema.json
    assert published == extraction_schema()
