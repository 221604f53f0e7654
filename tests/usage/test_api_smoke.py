import json

from workspaces.models import HistoryItem


def post(client, metered, path, body, key="k-1", **headers):
    extra = metered.auth() | ({"HTTP_IDEMPOTENCY_KEY": key} if key else {}) | headers
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)


def test_charge_then_replay(client, metered):
    body = {
        "member": metered.member.email,
        "tool": "image",
        "model": "flux-pro",
        "units": 2,
        "history": {"prompt": "a red fox", "output_text": "done"},
    }
    first = post(client, metered, "/api/v1/charges", body)
    assert first.status_code == 201, first.content
    assert first.json()["credits"] == 24
    assert first.json()["available_credits"] == 10_000 - 24
    again = post(client, metered, "/api/v1/charges", body)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert HistoryItem.objects.get().prompt == "a red fox"
    other = post(client, metered, "/api/v1/charges", body | {"units": 3})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"


def test_hold_capture(client, metered):
    body = {"member": metered.member.email, "tool": "video", "model": "kling-1.6", "units": 10}
    held = post(client, metered, "/api/v1/holds", body)
    assert held.status_code == 201, held.content
    hold_id = held.json()["id"]
    captured = post(client, metered, f"/api/v1/holds/{hold_id}/capture", {"units": 4}, key="cap-1")
    assert captured.status_code == 200, captured.content
    assert captured.json()["credits"] == 80
    assert captured.json()["available_credits"] == 10_000 - 80
    released = post(client, metered, f"/api/v1/holds/{hold_id}/release", {}, key=None)
    assert released.status_code == 409, released.content


def test_errors(client, metered):
    assert client.get("/api/v1/workspace").status_code == 401
    assert client.get("/api/v1/workspace").json()["error"]["code"] == "invalid_api_key"
    ok = client.get("/api/v1/workspace", **metered.auth())
    assert ok.status_code == 200, ok.content
    missing = post(client, metered, "/api/v1/charges", {"member": "x@y.z"}, key=None)
    assert missing.json()["error"]["code"] == "missing_idempotency_key", missing.content
    bad = post(client, metered, "/api/v1/charges", {"member": 3})
    assert bad.status_code == 400, bad.content
    assert bad.json()["error"]["code"] == "invalid_request"
    viewer = post(
        client,
        metered,
        "/api/v1/charges",
        {"member": metered.viewer.email, "tool": "chat", "model": "gpt-4o", "units": 1},
    )
    assert viewer.status_code == 403, viewer.content
    broke = post(
        client,
        metered,
        "/api/v1/charges",
        {"member": metered.member.email, "tool": "chat", "model": "gpt-4o", "units": 100_000},
    )
    assert broke.status_code == 402, broke.content
    assert client.get("/api/v1/nope", **metered.auth()).status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 200
