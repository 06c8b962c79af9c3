"""Fixtures for the pages."""

from __future__ import annotations

import pytest

from tests.conftest import link_in
from tests.helpers import form_page, login_via_web, register_via_web

EMAIL = "aigerim@example.kz"


@pytest.fixture
def signed_in(client, published_policy, mailbox, deliver):
    """A registered, verified user of the site, signed in (Aigerim, from the form helpers)."""
    register_via_web(client, published_policy["en"])
    deliver()
    path = link_in(mailbox.last_to(EMAIL), "/verify-email/").removeprefix("https://testserver")
    client.post(path, data={"csrf_token": form_page(client, path)})
    assert login_via_web(client, EMAIL).status_code == 303
    return client
