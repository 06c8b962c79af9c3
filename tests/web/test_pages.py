"""Site-wide behaviour: language choice, security headers, health, vendored assets."""

from __future__ import annotations

import re
from pathlib import Path

import smartprotect

TEMPLATES = Path(smartprotect.__file__).parent / "web" / "templates"


def test_language_from_prefix_then_cookie_then_accept_language(client):
    assert '<html lang="en">' in client.get("/").text
    assert '<html lang="ru">' in client.get("/ru/").text
    assert '<html lang="ru">' in client.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).text
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "de, en;q=0.5"}).text
    # The switcher's choice beats Accept-Language...
    response = client.get("/lang/en?next=/login", headers={"Accept-Language": "ru"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "ru"}).text
    # ...and the URL prefix beats both.
    assert '<html lang="ru">' in client.get("/ru/login").text


def test_switcher_links_keep_the_page(client):
    html = client.get("/ru/login").text
    assert 'href="/lang/en?next=/login"' in html
    response = client.get("/lang/ru?next=/login")
    assert response.headers["location"] == "/ru/login"
    assert client.get("/lang/ru?next=//evil.example").headers["location"] == "/ru/"


def test_security_headers(client):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"].startswith("max-age=")


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_healthz_reports_a_dead_database(settings, clock):
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine

    from smartprotect.app import create_app

    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = TestClient(create_app(settings, clock=clock, engine=dead)).get("/healthz")
    assert response.status_code == 503 and response.json()["database"] == "unavailable"


def test_static_assets_are_served_locally(client):
    assert client.get("/static/js/htmx.min.js").status_code == 200
    assert client.get("/static/css/site.css").status_code == 200
    for template in TEMPLATES.rglob("*.html"):
        for url in re.findall(r'(?:src|href)="([^"]+)"', template.read_text()):
            assert not re.match(r"(https?:)?//", url), f"{template.name} loads {url}"


def test_unknown_pages_are_a_translated_404(client):
    response = client.get("/ru/no-such-page")
    assert response.status_code == 404
    assert "This page does not exist." not in response.text
    assert '<html lang="ru">' in response.text


def test_privacy_page_shows_the_policy_in_force(client, published_policy):
    assert "Smart Protect collects, accesses and uses" in client.get("/privacy").text
    assert "Smart Protect собирает, получает доступ" in client.get("/ru/privacy").text
