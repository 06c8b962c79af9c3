"""In real headless Chromium against a real server process: register, verify, sign in and
out, reset the password, in English and in Russian. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ARTIFACTS, SMS_GATEWAY_TOKEN, link_in
from tests.live import live_server

CHROMIUM = os.environ.get("SMARTPROTECT_CHROMIUM", "/usr/bin/chromium")
# Flags for a sandboxed CI machine without network: no GPU, no phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MAIL_WAIT_SECONDS = 20
SHOTS = ARTIFACTS / "screenshots"

pytestmark = pytest.mark.browser

TEXT = {
    "en": {
        "register": "Register",
        "confirm": "Confirm my email address",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "confirmed": "Your email address is confirmed. You can sign in now.",
        "signed_out": "You have signed out.",
        "required": "This field is required.",
        "send_link": "Send the link",
        "change": "Change the password",
        "changed": (
            "Your password has been changed and every session signed out. "
            "Sign in with the new password."
        ),
    },
}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make test` (it installs it) "
            "or `apt-get install chromium`"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(database_url, engine, smtp_port, tmp_path, sms_gateway):
    with live_server(
        database_url=database_url,
        smtp_port=smtp_port,
        log_path=tmp_path / "server.log",
        SMARTPROTECT_SMS_BACKEND="http",
        SMARTPROTECT_SMS_GATEWAY_URL=sms_gateway.url,
        SMARTPROTECT_SMS_GATEWAY_TOKEN=SMS_GATEWAY_TOKEN,
    ) as running:
        yield running


def _wait_for_mail(mailbox, address: str, count: int):
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while len(mailbox.to(address)) < count:
        assert time.monotonic() < deadline, f"no mail number {count} to {address}"
        time.sleep(0.1)
    return mailbox.to(address)[count - 1]


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def _t(lang: str, key: str, catalog) -> str:
    return catalog(TEXT["en"][key]) if lang == "ru" else TEXT["en"][key]


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_register_verify_sign_in_sign_out_and_reset_in_a_real_browser(
    browser, server, published_policy, mailbox, lang
):
    from smartprotect.i18n import translations

    _ = translations(lang).gettext

    def t(key: str) -> str:
        return _t(lang, key, _)

    prefix = "" if lang == "en" else "/ru"
    # Links in mail always name their language, and the site keeps a prefix once chosen.
    mailed = f"/{lang}"
    email = f"browser-{lang}@example.kz"
    password = "a browser passphrase"
    context = browser.new_context(locale="ru-RU" if lang == "ru" else "en-US")
    page = context.new_page()
    broken: list[str] = []
    # Pages answer 4xx on bad input by design; every script, style and image must load.
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and r.request.resource_type != "document"
            and broken.append(f"{r.status} {r.url}")
        ),
    )
    page.on("requestfailed", lambda r: broken.append(f"failed {r.url}"))
    page.on("pageerror", lambda exc: broken.append(f"script error {exc}"))

    # An empty form comes back with errors next to the fields.
    page.goto(f"{server.url}{prefix}/register")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    _shot(page, f"{lang}-01-register")
    page.locator("form[action$='/register'] button[type=submit]").click()
    expect(page.locator("#e-email")).to_have_text(t("required"))
    _shot(page, f"{lang}-02-register-errors")

    page.fill("#f-email", email)
    page.fill("#f-phone", "+7 701 555 0101")
    page.fill("#f-password", password)
    page.fill("#f-password_confirm", password)
    page.fill("#f-first_name", "Айгерим")
    page.check("#f-accept_policy")
    page.check("#f-consent_processing")
    expect(page.locator("#f-marketing_email")).not_to_be_checked()
    page.locator("form[action$='/register'] button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}{prefix}/register/done")
    _shot(page, f"{lang}-03-check-your-email")

    message = _wait_for_mail(mailbox, email, 1)
    page.goto(link_in(message, "/verify-email/"))
    _shot(page, f"{lang}-04-verify")
    page.get_by_role("button", name=t("confirm")).click()
    expect(page).to_have_url(f"{server.url}{mailed}/login?verified=1")
    expect(page.get_by_role("status")).to_contain_text(t("confirmed"))
    _shot(page, f"{lang}-05-verified")

    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}{mailed}/account")
    expect(page.locator("main")).to_contain_text(email)
    _shot(page, f"{lang}-06-account")

    page.get_by_role("button", name=t("sign_out")).click()
    expect(page).to_have_url(f"{server.url}{mailed}/login?logged_out=1")
    expect(page.get_by_role("status")).to_have_text(t("signed_out"))
    _shot(page, f"{lang}-07-signed-out")

    # Forgotten password: ask for a link, follow it, choose a new password, sign in with it.
    page.goto(f"{server.url}{prefix}/password-reset")
    page.fill("#f-email", email)
    page.get_by_role("button", name=t("send_link")).click()
    _shot(page, f"{lang}-08-reset-requested")
    message = _wait_for_mail(mailbox, email, 2)
    page.goto(link_in(message, "/password-reset/"))
    new_password = "an even newer passphrase"
    page.fill("#f-password", new_password)
    page.fill("#f-password_confirm", new_password)
    _shot(page, f"{lang}-09-reset-form")
    page.get_by_role("button", name=t("change")).click()
    expect(page.get_by_role("status")).to_contain_text(t("changed"))
    page.fill("#f-email", email)
    page.fill("#f-password", new_password)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}{mailed}/account")
    _shot(page, f"{lang}-10-signed-in-after-reset")

    assert broken == []
    context.close()


def test_language_switcher_in_a_real_browser(browser, server, published_policy):
    page = browser.new_page()
    page.goto(f"{server.url}/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("link", name="Русский").click()
    expect(page).to_have_url(f"{server.url}/ru/login")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    # The choice is remembered on pages without a prefix.
    page.goto(f"{server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    _shot(page, "switcher-ru-home")
    page.close()


def _sign_up(page: Page, server, mailbox, email: str, phone: str) -> None:
    """Register, confirm the address from the mail, and sign in (English pages)."""
    page.goto(f"{server.url}/register")
    page.fill("#f-email", email)
    page.fill("#f-phone", phone)
    page.fill("#f-password", "a browser passphrase")
    page.fill("#f-password_confirm", "a browser passphrase")
    page.check("#f-accept_policy")
    page.check("#f-consent_processing")
    page.locator("form[action$='/register'] button[type=submit]").click()
    page.goto(link_in(_wait_for_mail(mailbox, email, 1), "/verify-email/"))
    page.get_by_role("button", name="Confirm my email address").click()
    page.fill("#f-email", email)
    page.fill("#f-password", "a browser passphrase")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}/en/account")


def test_consents_and_a_new_revision_in_a_real_browser(
    browser, server, published_policy, mailbox, session_factory, clock, keyring
):
    from datetime import timedelta

    from smartprotect.db import unit_of_work
    from smartprotect.privacy.policy import service as policy

    email = "consents@example.kz"
    page = browser.new_page()
    _sign_up(page, server, mailbox, email, "+7 701 555 0102")

    # Consents: one click gives, one click withdraws (htmx swaps the card in place).
    page.goto(f"{server.url}/en/account/privacy")
    card = page.locator("#consent-marketing_email")
    card.get_by_role("button", name="Give consent").click()
    expect(card.get_by_role("button", name="Withdraw consent")).to_be_visible()
    expect(page.locator("#consent-marketing_email .state")).to_have_text("given")
    _shot(page, "privacy-consents")
    page.locator("#consent-marketing_email").get_by_role("button", name="Withdraw consent").click()
    expect(page.locator("#consent-marketing_email .state")).to_have_text("not given")

    # A new revision is posted: the next page asks to accept or decline it.
    clock.set(clock.now() + timedelta(days=1))
    with unit_of_work(session_factory) as session:
        policy.publish_revision(
            session=session, keyring=keyring, version="2026-11-26",
            texts={"en": "Revised policy.", "ru": "Новая редакция."}, clock=clock,
        )  # fmt: skip
    page.goto(f"{server.url}/en/account")
    expect(page).to_have_url(re.compile(r"/en/privacy/review\?next="))
    expect(page.locator(".policy-text")).to_have_text("Revised policy.")
    _shot(page, "privacy-review")
    page.get_by_role("button", name="I decline").click()
    expect(page.locator("main")).to_contain_text("clause 8.3")
    _shot(page, "privacy-declined")
    page.get_by_role("button", name="Accept revision 2026-11-26 after all").click()
    expect(page).to_have_url(f"{server.url}/en/account")
    page.close()


def _owner_page(browser, server, mailbox, email: str, phone_end: str) -> tuple[Page, list]:
    """A page signed in as a new owner, and the list its script errors go to."""
    page = browser.new_page()
    broken: list[str] = []
    page.on("pageerror", lambda exc: broken.append(str(exc)))
    _sign_up(page, server, mailbox, email, f"+7 701 555 {phone_end}")
    return page, broken


def _enrollment_code(page: Page, server, name: str, capabilities=()) -> str:
    """Add a device on the dashboard; returns the one-time code shown."""
    page.goto(f"{server.url}/en/devices")
    page.fill("#f-device_name", name)
    for capability in capabilities:
        page.check(f"#f-capability_{capability}")
    page.get_by_role("button", name="Create an enrollment code").click()
    return page.locator("#enrollment-code").inner_text()


def test_dashboard_map_and_live_command_states_in_a_real_browser(
    browser, server, published_policy, mailbox
):
    import httpx

    page, broken = _owner_page(browser, server, mailbox, "devices@example.kz", "0103")
    code = _enrollment_code(page, server, "Office laptop")
    enrolled = httpx.post(
        f"{server.url}/api/v1/agent/enroll",
        json={"code": code, "platform": "linux", "allowed": ["locate", "ring", "lock"]},
    ).json()
    auth = {"Authorization": f"Bearer {enrolled['credential']}"}
    from datetime import UTC, datetime

    fix = {"latitude": 43.238949, "longitude": 76.889709, "accuracy_m": 35, "method": "wifi",
           "fixed_at": datetime.now(UTC).isoformat()}  # fmt: skip
    httpx.post(f"{server.url}/api/v1/agent/check-in", json={"locations": [fix]}, headers=auth)

    page.goto(f"{server.url}/en/devices")
    expect(page.locator("#map.leaflet-container")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon")).to_have_count(1)
    _shot(page, "devices-dashboard-map")

    page.get_by_role("link", name="Office laptop").click()
    page.get_by_role("button", name="Ring", exact=True).click()
    expect(page.locator("#commands tbody tr").first).to_contain_text("queued")
    # The device fetches it; the page shows the new state without a reload.
    httpx.post(f"{server.url}/api/v1/agent/check-in", json={}, headers=auth)
    expect(page.locator("#commands tbody tr").first).to_contain_text("delivered", timeout=8000)
    _shot(page, "device-page-commands")
    assert broken == []
    page.close()


def test_this_machines_agent_on_the_map_locked_and_wiped_in_a_real_browser(
    browser, server, published_policy, mailbox, tmp_path
):
    """The issue's by-hand check, end to end: a real agent process on this machine, enrolled
    from the dashboard, seen on the map, then locked with a message and wiped (a test
    folder) from the device page."""
    import subprocess
    import sys

    page, broken = _owner_page(browser, server, mailbox, "this-machine@example.kz", "0104")
    code = _enrollment_code(page, server, "This machine", ("locate", "ring", "lock", "wipe"))

    wiped, kept = tmp_path / "wipe-me", tmp_path / "keep-me"
    (wiped / "Documents").mkdir(parents=True)
    (wiped / "Documents" / "passport-scan.pdf").write_bytes(b"%PDF personal")
    (wiped / ".ssh").mkdir()
    (wiped / ".ssh" / "id_ed25519").write_text("secret key")
    kept.mkdir()
    (kept / "notes.txt").write_text("not to be wiped")
    locked = tmp_path / "locked"
    state_dir = tmp_path / "agent"
    agent = [sys.executable, "-m", "smartprotect", "agent"]
    enrolled = subprocess.run(
        [*agent, "enroll", "--server", server.url, "--code", code, "--allow-wipe",
         "--wipe-path", str(wiped), "--fixed-location", "43.238949,76.889709,25",
         "--lock-command", f"touch {locked}", "--ring-command", "true",
         "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    log = (tmp_path / "agent.log").open("w")
    running = subprocess.Popen(
        [*agent, "run", "--state-dir", str(state_dir)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        page.goto(f"{server.url}/en/devices")
        deadline = time.monotonic() + 30
        while page.locator(".leaflet-marker-icon").count() == 0:
            assert time.monotonic() < deadline, "the agent's location never reached the map"
            time.sleep(0.5)
            page.reload()
        expect(page.locator("#map.leaflet-container")).to_be_visible()
        _shot(page, "this-machine-on-the-map")

        page.get_by_role("link", name="This machine").click()
        page.fill("#f-message", "This laptop is lost. Please call me.")
        page.fill("#f-phone", "+7 701 555 0104")
        page.get_by_role("button", name="Lock", exact=True).click()
        expect(page.locator("#commands tbody tr").first).to_contain_text("succeeded", timeout=20000)
        assert locked.exists()
        assert "This laptop is lost" in (state_dir / "lock-message.txt").read_text()
        _shot(page, "this-machine-locked")

        page.fill("#f-confirm_name", "This machine")
        page.fill("#f-password", "a browser passphrase")
        page.get_by_role("button", name="Wipe", exact=True).click()
        expect(page.locator("#commands tbody tr").first).to_contain_text("succeeded", timeout=30000)
        expect(page.locator("#commands tbody tr").first).to_contain_text(
            "2 file(s) removed, 0 could not be removed."
        )
        assert not any(wiped.rglob("*")), "the wipe left files behind"
        page.reload()
        expect(page.locator("main")).to_contain_text("it takes no more commands")
        expect(page.get_by_role("button", name="Wipe", exact=True)).to_have_count(0)
        _shot(page, "this-machine-wiped")
        assert (kept / "notes.txt").read_text() == "not to be wiped"
    finally:
        running.terminate()
        running.wait(timeout=10)
        log.close()
    assert broken == []
    page.close()


def test_see_change_download_and_delete_my_data_in_a_real_browser(
    browser, server, published_policy, mailbox, db, sms_gateway
):
    import json

    from smartprotect.accounts import service as accounts

    email = "mydata@example.kz"
    page, broken = _owner_page(browser, server, mailbox, email, "0199")
    page.get_by_role("link", name="My personal data").first.click()
    expect(page).to_have_url(f"{server.url}/en/account/profile")

    # Change: the name, then passport data, which comes back masked.
    page.fill("#names #f-last_name", "Ахметова")
    page.fill("#names #f-first_name", "Алия")
    page.get_by_role("button", name="Save my name").click()
    expect(page.locator("[role=status]")).to_contain_text("Your name has been saved.")
    page.fill("#passport #f-number", "N 98765432")
    page.fill("#passport #f-authority", "МВД РК")
    page.fill("#passport #f-issued_on", "2020-02-03")
    page.get_by_role("button", name="Save my passport data").click()
    expect(page.locator(".passport-number")).to_have_text("•••••••32")
    page.get_by_role("button", name="Show my passport data").click()
    expect(page.locator(".passport-number")).to_have_text("N98765432")
    _shot(page, "my-data")

    # Confirm the phone number with the code texted to it.
    page.get_by_role("button", name="Text me a code").click()
    expect(page.locator("[role=status]")).to_contain_text("We have texted a code")
    page.fill("#phone #f-code", sms_gateway.last_code())
    page.get_by_role("button", name="Confirm my number").click()
    expect(page.locator("[role=status]")).to_contain_text("Your phone number is confirmed.")
    expect(page.locator("#phone")).not_to_contain_text("not confirmed")

    # Download everything, as JSON, from the Privacy page.
    page.goto(f"{server.url}/en/account/privacy")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as JSON (machine-readable)").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["account"]["email"] == email and data["profile"]["last_name"] == "Ахметова"
    assert data["profile"]["passport"]["number"] == "N98765432"
    page.get_by_role("link", name="Open as a readable document").click()
    expect(page.locator("h1")).to_have_text("Everything Smart Protect holds about you")

    # Delete the whole account.
    page.goto(f"{server.url}/en/account/profile")
    page.fill("#delete #f-password", "a browser passphrase")
    page.get_by_role("button", name="Delete my account for good").click()
    expect(page.locator("h1")).to_have_text("Your account is closed")
    expect(page.locator("main")).to_contain_text("nothing else of it is kept")
    _shot(page, "my-data-deleted")
    assert broken == []
    db.expire_all()
    assert accounts.get_by_email(session=db, email=email) is None
    page.close()


def test_fmd_phones_opened_and_commanded_in_a_real_browser(
    browser, server, published_policy, mailbox
):
    """Issue 6's done-when: FMD phones on the dashboard, their locations decrypted in the
    browser with the FMD password (never sent to the server), and a ring that reaches
    them: signed there for the app's protocol v1, encrypted there for v2."""
    import base64
    import json

    import httpx
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from fmd_api import FmdClient
    from fmd_api.protocol_v2 import TYPE_COMMAND

    from tests.api.test_fmd_v1 import PASSWORD, Phone

    page, broken = _owner_page(browser, server, mailbox, "fmd@example.kz", "0106")
    sent_passwords: list[str] = []
    secrets = (PASSWORD, "tablet passphrase")
    page.on("request", lambda r: sent_passwords.extend(
        p for p in secrets if p in (r.post_data or "") + r.url))  # fmt: skip
    capabilities = ("locate", "ring", "lock", "wipe")
    phone_code = _enrollment_code(page, server, "Pixel", capabilities)
    tablet_code = _enrollment_code(page, server, "Tablet", capabilities)

    # The FMD app (v1): register, log in, upload a location and a picture.
    phone = Phone()
    http = httpx.Client(base_url=server.url + "/api/v1", timeout=30)
    assert (
        http.put(
            "/device",
            json={
                "hashedPassword": phone.login_hash,
                "pubkey": phone.public,
                "privkey": phone.wrapped,
                "requestedUsername": "pixel7",
                "registrationToken": phone_code,
            },
        ).status_code
        == 200
    )
    token = http.put(
        "/requestAccess",
        json={"IDT": "pixel7", "Data": phone.login_hash, "SessionDurationSeconds": 3600},
    ).json()["Data"]
    fix = {"provider": "gps", "lat": 43.238949, "lon": 76.889709, "accuracy": 12, "bat": 64,
           "date": 1795700000000}  # fmt: skip
    http.post("/location", json={"IDT": token, "Data": phone.encrypt(json.dumps(fix).encode())})
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0 not really a JPEG").decode()
    http.post("/picture", json={"IDT": token, "Data": phone.encrypt(jpeg.encode())})

    # A v2 client (the published one): register with the other code and upload a location.
    async def tablet_registers():
        client = FmdClient(server.url)
        try:
            await client.register_v2("tablet", "tablet passphrase", registration_token=tablet_code)
            await client.post_data_items("location", [json.dumps(
                {"provider": "network", "lat": "51.128", "lon": "71.430", "accuracy": 40,
                 "date": 1795700000000}).encode()])  # fmt: skip
        finally:
            await client.close()

    _run_async(tablet_registers)

    # On the dashboard: each phone's newest location, opened with its password, on the map
    # the agents' devices are on.
    page.goto(f"{server.url}/en/devices")
    for name, password, where in (
        ("Pixel", PASSWORD, "43.23895, 76.88971"),
        ("Tablet", "tablet passphrase", "51.12800, 71.43000"),
    ):
        page.get_by_label(f"FMD password of {name}").fill(password)
        row = page.locator("tr", has_text=name)
        row.get_by_role("button", name="Show on the map").click()
        expect(row).to_contain_text(where, timeout=30000)
    expect(page.locator("#map .leaflet-marker-icon")).to_have_count(2)
    _shot(page, "fmd-phones-on-the-dashboard-map")

    page.get_by_role("link", name="Pixel").click()
    expect(page.locator("main")).to_contain_text("cannot read the phone's data without it")
    page.fill("#fmd-password", "not the password")
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator("[data-fmd-status]")).to_have_text(
        "This is not the FMD password of this phone.", timeout=30000)  # fmt: skip
    page.fill("#fmd-password", PASSWORD)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator("[data-fmd-locations] tbody tr")).to_have_count(1, timeout=30000)
    expect(page.locator("[data-fmd-locations]")).to_contain_text("43.23895, 76.88971")
    expect(page.locator("[data-fmd-locations]")).to_contain_text("64%")
    expect(page.locator("#fmd-map.leaflet-container")).to_be_visible()
    page.get_by_role("button", name="Show the pictures").click()
    expect(page.locator("[data-fmd-pictures] img")).to_have_attribute(
        "src", "data:image/jpeg;base64," + jpeg)  # fmt: skip
    page.get_by_role("button", name="Ring", exact=True).click()
    expect(page.locator("[data-fmd-status]")).to_contain_text("Sent: ring")
    _shot(page, "fmd-phone-opened")

    # The phone reads the command once and checks the owner's browser signed it.
    command = http.put("/command", json={"IDT": token, "Data": ""}).json()
    assert command["Data"] == "ring"
    phone._key.public_key().verify(
        base64.b64decode(command["CmdSig"]), f"{command['UnixTime']}:ring".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256(),
    )  # fmt: skip

    # Lock with a message, and a wipe behind its safety check, signed the same way.
    page.fill("#fmd-message", "Please call +7 701 555 0106")
    page.get_by_role("button", name="Lock with this message").click()
    expect(page.locator("[data-fmd-status]")).to_contain_text("Sent: lock")
    assert http.put("/command", json={"IDT": token, "Data": ""}).json()["Data"] == (
        "lock Please call +7 701 555 0106")  # fmt: skip
    page.fill("#fmd-pin", "4321")
    page.fill("#fmd-confirm-name", "Pixel")
    page.fill("#fmd-account-password", "not my password")
    page.get_by_role("button", name="Wipe", exact=True).click()
    expect(page.locator("[data-fmd-status]")).to_contain_text("password")
    assert http.put("/command", json={"IDT": token, "Data": ""}).json()["Data"] == ""
    page.fill("#fmd-account-password", "a browser passphrase")
    page.get_by_role("button", name="Wipe", exact=True).click()
    expect(page.locator("[data-fmd-status]")).to_contain_text("Sent: delete")
    wipe = http.put("/command", json={"IDT": token, "Data": ""}).json()
    assert wipe["Data"] == "delete 4321"
    phone._key.public_key().verify(
        base64.b64decode(wipe["CmdSig"]), f"{wipe['UnixTime']}:delete 4321".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256(),
    )  # fmt: skip

    # The v2 tablet, on the same kind of page.
    page.goto(f"{server.url}/en/devices")
    page.get_by_role("link", name="Tablet").click()
    page.fill("#fmd-password", "tablet passphrase")
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator("[data-fmd-locations]")).to_contain_text("51.12800, 71.43000",
                                                                 timeout=30000)  # fmt: skip
    page.get_by_role("button", name="Ring", exact=True).click()
    expect(page.locator("[data-fmd-status]")).to_contain_text("Sent: ring")

    async def tablet_reads() -> list[str]:
        client = await FmdClient.create(server.url, "tablet", "tablet passphrase")
        try:
            return [client.decrypt_item(TYPE_COMMAND, item).decode()
                    for item in await client.get_data_items(TYPE_COMMAND)]  # fmt: skip
        finally:
            await client.close()

    assert _run_async(tablet_reads) == ["ring"]
    assert sent_passwords == [], "an FMD password left the browser"
    assert broken == []
    http.close()
    page.close()


def test_openly_registered_fmd_phones_linked_in_a_real_browser(
    browser, database_url, engine, smtp_port, tmp_path, sms_gateway, published_policy, mailbox
):
    """Open registration: phones registered with no code are linked to an account on the
    dashboard, the browser logging in to each FMD account (v1 and v2) with its password,
    which it never sends; each then works as any FMD device."""
    import json

    import httpx
    from fmd_api import FmdClient

    from tests.api.test_fmd_v1 import PASSWORD, Phone

    with live_server(
        database_url=database_url, smtp_port=smtp_port, log_path=tmp_path / "server.log",
        SMARTPROTECT_SMS_BACKEND="http", SMARTPROTECT_SMS_GATEWAY_URL=sms_gateway.url,
        SMARTPROTECT_SMS_GATEWAY_TOKEN=SMS_GATEWAY_TOKEN,
        SMARTPROTECT_FMD_OPEN_REGISTRATION="true",
    ) as server:  # fmt: skip
        page, broken = _owner_page(browser, server, mailbox, "link@example.kz", "0107")
        sent_passwords: list[str] = []
        secrets = (PASSWORD, "tablet passphrase")
        page.on("request", lambda r: sent_passwords.extend(
            p for p in secrets if p in (r.post_data or "") + r.url))  # fmt: skip

        # The FMD app (v1) registers with no registration token, logs in and uploads.
        phone = Phone()
        http = httpx.Client(base_url=server.url + "/api/v1", timeout=30)
        assert http.put("/device", json={
            "hashedPassword": phone.login_hash, "pubkey": phone.public,
            "privkey": phone.wrapped, "requestedUsername": "openpixel",
            "registrationToken": ""}).status_code == 200  # fmt: skip
        token = http.put(
            "/requestAccess",
            json={"IDT": "openpixel", "Data": phone.login_hash, "SessionDurationSeconds": 3600},
        ).json()["Data"]
        fix = {"provider": "gps", "lat": 42.87, "lon": 74.59, "accuracy": 9, "date": 1795700000000}
        http.post("/location", json={"IDT": token, "Data": phone.encrypt(json.dumps(fix).encode())})

        async def tablet_registers():
            client = FmdClient(server.url)
            try:
                await client.register_v2("opentablet", "tablet passphrase", registration_token="")
            finally:
                await client.close()

        _run_async(tablet_registers)

        page.goto(f"{server.url}/en/devices")
        expect(page.locator("#link-fmd")).to_contain_text("the password is not sent to us")
        page.fill("#f-fmd_id", "openpixel")
        page.fill("#f-fmd_password", "not the password")
        page.fill("#f-link_device_name", "Open Pixel")
        page.get_by_role("button", name="Link the phone").click()
        expect(page.locator("[data-fmd-link-status]")).to_have_text(
            "Signing in to this FMD account did not work. Check its ID and password.",
            timeout=30000)  # fmt: skip
        page.fill("#f-fmd_password", PASSWORD)
        page.get_by_role("button", name="Link the phone").click()
        expect(page.locator("h1")).to_contain_text("Open Pixel", timeout=30000)
        page.fill("#fmd-password", PASSWORD)
        page.get_by_role("button", name="Open", exact=True).click()
        expect(page.locator("[data-fmd-locations]")).to_contain_text("42.87000, 74.59000",
                                                                     timeout=30000)  # fmt: skip
        page.get_by_role("button", name="Ring", exact=True).click()
        expect(page.locator("[data-fmd-status]")).to_contain_text("Sent: ring")
        assert http.put("/command", json={"IDT": token, "Data": ""}).json()["Data"] == "ring"

        page.goto(f"{server.url}/en/devices")
        page.fill("#f-fmd_id", "opentablet")
        page.fill("#f-fmd_password", "tablet passphrase")
        page.fill("#f-link_device_name", "Open Tablet")
        page.get_by_role("button", name="Link the phone").click()
        expect(page.locator("h1")).to_contain_text("Open Tablet", timeout=30000)
        page.goto(f"{server.url}/en/devices")
        expect(page.locator("table.devices")).to_contain_text("Open Pixel")
        expect(page.locator("table.devices")).to_contain_text("Open Tablet")
        _shot(page, "fmd-phones-linked")
        assert sent_passwords == [], "an FMD password left the browser"
        assert broken == []
        http.close()
        page.close()


def _run_async(work):
    """Run an asyncio client beside Playwright's own event loop (in a thread of its own)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work()).result()
