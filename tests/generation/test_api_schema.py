"""The OpenAPI schema describes the generation API as it answers (files, sweeps, actions)."""

from __future__ import annotations

import pytest


@pytest.fixture
def schema(client, db) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_stored_files_are_objects_with_url_and_sha256(schema):
    components = schema["components"]["schemas"]
    assert set(components["StoredFile"]["properties"]) == {"url", "sha256", "size"}
    run = components["TrainingRun"]["properties"]
    assert run["lora_kohya"]["allOf"] == [{"$ref": "#/components/schemas/StoredFile"}]
    assert run["lora_kohya"]["nullable"] is True  # null until the run succeeds
    image = components["GeneratedImage"]["properties"]["file"]
    assert image["allOf"] == [{"$ref": "#/components/schemas/StoredFile"}]
    assert "nullable" not in image
    runs = components["Sweep"]["properties"]["runs"]
    assert runs["items"] == {"$ref": "#/components/schemas/SweepRun"}


def test_action_views_document_their_bodies_and_refusals(schema):
    paths = schema["paths"]
    approve = paths["/api/v1/generated-images/{id}/approve/"]["post"]
    body = approve["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ApproveRequest"}
    # Besides their own answers, every operation documents the standard errors
    # (archives/schema.py): 403, 429, 400 with parameters or a body, 404 with a path id.
    assert set(approve["responses"]) == {"200", "202", "400", "403", "404", "429"}
    cancel = paths["/api/v1/training-runs/{id}/cancel/"]["post"]
    assert "requestBody" not in cancel and set(cancel["responses"]) == {
        "200",
        "409",
        "400",
        "403",
        "404",
        "429",
    }
    presets = paths["/api/v1/training-presets/"]["get"]["responses"]["200"]
    assert presets["content"]["application/json"]["schema"]["type"] == "array"
    draft = paths["/api/v1/passages/{id}/draft-prompt/"]["post"]
    assert set(draft["responses"]) == {"202", "503", "400", "403", "404", "429"}
    create = paths["/api/v1/generation-requests/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/GenerationRequestCreateRequest"}
    assert "201" in create["responses"]
