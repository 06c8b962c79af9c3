"""What each consent covers, stated as Kazakhstan's law on personal data asks a consent to
state it: the operator, the subject, the term, whether data goes to third parties or abroad,
and which data (Law No. 94-V, art. 8)."""

from __future__ import annotations

from dataclasses import dataclass

from smartprotect.i18n import N_
from smartprotect.privacy.consent.models import Channel, Purpose

OPERATOR = N_("LLP “Smart Service Group” (Smart Protect), Almaty, Tole Bi st. 23A, Kazakhstan")
TERM_RETENTION = N_(
    "Until you withdraw it; the data itself is kept at most 1 year from when it was provided "
    "(clause 2.4)."
)
TERM_UNTIL_WITHDRAWN = N_("Until you withdraw it.")


@dataclass(frozen=True)
class Terms:
    purpose: Purpose
    clause: str
    label: str
    statement: str
    data: tuple[str, ...]
    term: str
    third_parties: bool
    abroad: bool
    # Required consents are the condition of the service; withdrawing them means closing
    # the account (clause 8.3), not toggling a switch.
    required: bool
    # Given for one device at enrollment (and changed on that device's page).
    per_device: bool = False


_PERSONAL_DATA = (
    N_("last name, first name, patronymic"),
    N_("passport data"),
    N_("email address"),
    N_("user accounts on the device"),
    N_("telephone number"),
    N_("geolocation of the device"),
    N_("other information you give us"),
)

TERMS: dict[Purpose, Terms] = {
    Purpose.PROCESSING_AND_STORAGE: Terms(
        purpose=Purpose.PROCESSING_AND_STORAGE,
        clause="3.1",
        label=N_("Processing and storage of personal data (clause 3.1)"),
        statement=N_(
            "I consent to Smart Protect processing and storing my personal data, including "
            "transferring it to third parties under the contract, to provide the Platinum "
            "Protection service."
        ),
        data=_PERSONAL_DATA,
        term=TERM_RETENTION,
        third_parties=True,
        abroad=False,
        required=True,
    ),
    Purpose.CROSS_BORDER_TRANSFER: Terms(
        purpose=Purpose.CROSS_BORDER_TRANSFER,
        clause="3.1",
        label=N_("Transfer to third parties, also abroad (clause 3.1)"),
        statement=N_(
            "I consent to such transfer also to the territory of other states (cross-border "
            "transfer)."
        ),
        data=_PERSONAL_DATA,
        term=TERM_RETENTION,
        third_parties=True,
        abroad=True,
        required=True,
    ),
    Purpose.MARKETING_EMAIL: Terms(
        purpose=Purpose.MARKETING_EMAIL,
        clause="3.2",
        label=N_("News and offers by email (clause 3.2)"),
        statement=N_(
            "Send me information mailings and promotional materials from Smart Protect, or "
            "from others on its behalf, to my email address."
        ),
        data=(N_("email address"), N_("last name, first name, patronymic")),
        term=TERM_UNTIL_WITHDRAWN,
        third_parties=True,
        abroad=False,
        required=False,
    ),
    Purpose.MARKETING_SMS: Terms(
        purpose=Purpose.MARKETING_SMS,
        clause="3.2",
        label=N_("News and offers by SMS (clause 3.2)"),
        statement=N_(
            "Send me information mailings and promotional materials from Smart Protect, or "
            "from others on its behalf, by SMS to my phone number."
        ),
        data=(N_("telephone number"),),
        term=TERM_UNTIL_WITHDRAWN,
        third_parties=True,
        abroad=False,
        required=False,
    ),
    Purpose.ANALYTICS_COOKIES: Terms(
        purpose=Purpose.ANALYTICS_COOKIES,
        clause="2.2",
        label=N_("Analytics cookies (clause 2.2)"),
        statement=N_(
            "Let Smart Protect use cookies to learn which pages I visit and for how long, to "
            "improve the service and the site (clause 4.1.4)."
        ),
        data=(N_("pages visited and time spent on them"),),
        term=TERM_UNTIL_WITHDRAWN,
        third_parties=False,
        abroad=False,
        required=False,
    ),
}


def _device_terms(purpose: Purpose, label: str, statement: str, data: tuple[str, ...]) -> Terms:
    return Terms(
        purpose=purpose,
        clause="1.5",
        label=label,
        statement=statement,
        data=data,
        term=TERM_RETENTION,
        third_parties=False,
        abroad=False,
        required=False,
        per_device=True,
    )


TERMS.update(
    {
        Purpose.DEVICE_LOCATE: _device_terms(
            Purpose.DEVICE_LOCATE,
            N_("Locate this device (clause 2.3.6)"),
            N_("Let the Application report where this device is, so I can find it."),
            (N_("geolocation of the device"),),
        ),
        Purpose.DEVICE_RING: _device_terms(
            Purpose.DEVICE_RING,
            N_("Make this device ring (clause 1.5)"),
            N_("Let the Application play a loud alarm on this device when I ask."),
            (),
        ),
        Purpose.DEVICE_LOCK: _device_terms(
            Purpose.DEVICE_LOCK,
            N_("Lock this device (clause 1.5)"),
            N_("Let the Application lock this device and show my message when I ask."),
            (),
        ),
        Purpose.DEVICE_WIPE: _device_terms(
            Purpose.DEVICE_WIPE,
            N_("Remove personal information from this device (clause 1.5)"),
            N_(
                "Let the Application use administrator rights to remove the personal "
                "information on this device when I ask, as protection against theft."
            ),
            (),
        ),
        Purpose.DEVICE_ACCOUNTS: _device_terms(
            Purpose.DEVICE_ACCOUNTS,
            N_("Report the accounts on this device (clause 2.3.4)"),
            N_("Let the Application report which user accounts exist on this device."),
            (N_("user accounts on the device"),),
        ),
    }
)

REQUIRED: tuple[Purpose, ...] = tuple(p for p, t in TERMS.items() if t.required)
OPTIONAL: tuple[Purpose, ...] = tuple(
    p for p, t in TERMS.items() if not t.required and not t.per_device
)
PER_DEVICE: tuple[Purpose, ...] = tuple(p for p, t in TERMS.items() if t.per_device)


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.WEB: N_("on the site"),
    Channel.APP: N_("in the application"),
    Channel.EMAIL_LINK: N_("by a link in an email"),
    Channel.API: N_("through the API"),
    Channel.STAFF: N_("by Smart Protect staff"),
}
