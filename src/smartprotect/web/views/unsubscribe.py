"""One-click withdrawal of consent to marketing mail (clause 7.2; RFC 8058).

The link in a message's footer opens a page with a button (a GET changes nothing: mail
scanners open links). Mail programs that honour `List-Unsubscribe-Post` POST to the same
address without cookies or a form token: the token in the address is the authority."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep, client_address
from smartprotect.mail import marketing
from smartprotect.web.templating import render

router = APIRouter()


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str, settings: SettingsDep,
                     keyring: KeyringDep) -> Response:  # fmt: skip
    known = marketing.user_id_of_token(secret=keyring.secret, token=token) is not None
    return render(request, "privacy/unsubscribe.html", settings=settings,
                  context={"token": token, "done": False, "known": known},
                  status_code=200 if known else 404)  # fmt: skip


@router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, token: str, db: DbSession, settings: SettingsDep,
                clock: ClockDep, keyring: KeyringDep) -> Response:  # fmt: skip
    done = marketing.unsubscribe(
        session=db, keyring=keyring, token=token, clock=clock,
        user_agent=request.headers.get("user-agent"), client_ip=client_address(request),
    )  # fmt: skip
    return render(request, "privacy/unsubscribe.html", settings=settings,
                  context={"token": token, "done": done, "known": done},
                  status_code=200 if done else 404)  # fmt: skip
