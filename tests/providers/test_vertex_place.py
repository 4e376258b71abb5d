"""Where a Vertex deployment's calls go: host by location, project and location sources."""

from __future__ import annotations

import pytest

from router.providers.vertex import _Target
from tests.providers.helpers import deployment


@pytest.mark.parametrize(("params", "env", "base", "project", "location"), [
    ({"vertex_project": "p1", "vertex_location": "global"}, {},
     "https://aiplatform.googleapis.com", "p1", "global"),
    ({"vertex_project": "p1", "vertex_location": "asia-east1"}, {"VERTEXAI_LOCATION": "eu"},
     "https://asia-east1-aiplatform.googleapis.com", "p1", "asia-east1"),
    ({}, {"VERTEXAI_PROJECT": "p-env", "VERTEXAI_LOCATION": "europe-west1"},
     "https://europe-west1-aiplatform.googleapis.com", "p-env", "europe-west1"),
    ({"vertex_ai_project": "alias"}, {}, "https://us-central1-aiplatform.googleapis.com",
     "alias", "us-central1"),
    ({"vertex_project": "p1", "api_base": "http://127.0.0.1:9/"}, {}, "http://127.0.0.1:9",
     "p1", "us-central1"),
    ({"vertex_credentials": {"client_email": "a@b", "private_key": "k" * 8,
                             "project_id": "from-key"}}, {},
     "https://us-central1-aiplatform.googleapis.com", "from-key", "us-central1"),
])
def test_place(params: dict, env: dict, base: str, project: str, location: str) -> None:
    dep = deployment("vertex_ai", "gemini-2.0-flash", api_base=params.pop("api_base", None),
                     params=params, env=env)
    target = _Target(dep)
    assert (target.base, target.project, target.location) == (base, project, location)
