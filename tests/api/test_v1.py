"""The JSON API: problem documents for bad input, token authentication, OpenAPI."""

from __future__ import annotations

from sqlalchemy import func, select

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.privacy.consent.models import Channel, ConsentEvent

EMAIL = "daniyar@example.kz"


def _body(policy_id, **overrides):
    body = {
        "email": EMAIL,
        "phone": "+77017654321",
        "password": "a long enough password",
        "policy_document_id": str(policy_id),
        "accept_policy": True,
        "consent_processing": True,
    }
    body.update(overrides)
    return body


def _token_for_new_user(db, clock, policy_id, keyring) -> str:
    from smartprotect.accounts.schemas import RegistrationRequest

    request = RegistrationRequest(**_body(policy_id))
    user = accounts.register(
        session=db,
        data=request,
        consents=request,
        channel=Channel.API,
        clock=clock,
        links=accounts.Links(base_url="https://testserver"),
        keyring=keyring,
    )
    user.email_verified_at = clock.now()
    _, raw = accounts.create_api_token(
        session=db, user=user, name="test", clock=clock, keyring=keyring
    )
    db.commit()
    return raw


def test_openapi_document(client):
    document = client.get("/openapi.json").json()
    assert "/api/v1/me" in document["paths"]
    assert "/api/v1/accounts" in document["paths"]


def test_register_over_the_api(client, db, published_policy):
    response = client.post("/api/v1/accounts", json=_body(published_policy["en"]))
    assert response.status_code == 202
    assert response.json()["status"] == "verification_sent"
    user = db.scalar(select(User))
    assert user.email == EMAIL
    channels = set(db.scalars(select(ConsentEvent.channel)))
    assert channels == {Channel.API}


def test_bad_input_is_a_problem_document_and_writes_nothing(client, db, published_policy):
    response = client.post(
        "/api/v1/accounts",
        json=_body(published_policy["en"], email="nope", phone="1", consent_processing=False),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"]
    assert set(problem["errors"]) >= {"email", "phone"}
    assert db.scalar(select(func.count()).select_from(User)) == 0

    response = client.post(
        "/api/v1/accounts", json=_body(published_policy["en"], accept_policy=False)
    )
    assert response.status_code == 422
    assert "accept_policy" in response.json()["errors"]
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_problem_documents_follow_the_language(client, published_policy):
    response = client.post(
        "/api/v1/accounts",
        json=_body(published_policy["en"], email="nope"),
        headers={"Accept-Language": "ru"},
    )
    assert response.json()["errors"]["email"] != "Enter a valid email address."


def test_malformed_json_is_a_problem_document(client):
    response = client.post(
        "/api/v1/accounts", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_registration_without_a_policy_is_refused(client, db):
    import uuid

    response = client.post("/api/v1/accounts", json=_body(uuid.uuid4()))
    assert response.status_code == 403
    assert "privacy policy" in response.json()["detail"]


def test_endpoints_need_a_token(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer spat_nonsense"})
    assert response.status_code == 401


def test_token_lifecycle(client, db, clock, published_policy, keyring):
    raw = _token_for_new_user(db, clock, published_policy["en"], keyring)
    auth = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=auth).json()["email_verified"] is True

    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=auth)
    assert created.status_code == 201
    second = created.json()
    assert second["token"].startswith("spat_") and second["prefix"] == second["token"][:12]

    listed = client.get("/api/v1/tokens", headers=auth).json()
    assert {t["name"] for t in listed} == {"test", "ci"}
    assert all("token" not in t for t in listed)

    assert client.delete(f"/api/v1/tokens/{second['id']}", headers=auth).status_code == 204
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {second['token']}"}).status_code
        == 401
    )
    assert client.post("/api/v1/tokens", json={"name": ""}, headers=auth).status_code == 422
    response = client.delete("/api/v1/tokens/not-a-uuid", headers=auth)
    assert response.status_code == 422


def test_policy_endpoint(client, published_policy):
    assert client.get("/api/v1/policy?lang=ru").json()["language"] == "ru"
    body = client.get("/api/v1/policy").json()
    assert body["version"] == "2017-06-15" and len(body["sha256"]) == 64


def test_unknown_api_path_is_a_problem_document(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
