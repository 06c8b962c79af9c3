"""Privacy pages: the policy and its revisions, answering a new revision, the consents."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartprotect.accounts import service as accounts
from smartprotect.deps import (
    ClockDep,
    DbSession,
    KeyringDep,
    OptionalUser,
    SettingsDep,
    client_address,
)
from smartprotect.errors import NotFound, PermissionDenied, ValidationFailed, rollback_unless_kept
from smartprotect.i18n import N_
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, Purpose
from smartprotect.privacy.consent.purposes import CHANNEL_LABELS, OPERATOR, TERMS
from smartprotect.privacy.policy import service as policy
from smartprotect.privacy.rights import erasure
from smartprotect.web.gates import SignedIn, SignedInUser
from smartprotect.web.templating import language, render
from smartprotect.web.views.forms import CheckedForm, forget_session, redirect, safe_next

router = APIRouter()


def _policy_page(request, db, settings, user, revision):
    current = policy.in_force(session=db)
    return render(
        request,
        "privacy/policy.html",
        settings=settings,
        user=user,
        context={
            "revision": revision,
            "document": policy.document_of(revision, language(request)) if revision else None,
            "revisions": policy.revisions(session=db),
            "in_force": revision is not None and current is not None and current.id == revision.id,
        },
    )


@router.get("/privacy")
def privacy_policy(
    request: Request, db: DbSession, settings: SettingsDep, user: OptionalUser
) -> Response:
    return _policy_page(request, db, settings, user, policy.in_force(session=db))


@router.get("/privacy/revisions/{version}")
def privacy_revision(
    request: Request, version: str, db: DbSession, settings: SettingsDep, user: OptionalUser
) -> Response:
    revision = policy.get_revision(session=db, version=version)
    if revision is None:
        raise NotFound(N_("This page does not exist."))
    return _policy_page(request, db, settings, user, revision)


def _review_page(request, db, settings, user, *, next_path="", declined=False, errors=None,
                 status_code=200):  # fmt: skip
    revision = policy.in_force(session=db)
    return render(
        request,
        "privacy/review.html",
        settings=settings,
        user=user,
        context={
            "revision": revision,
            "document": policy.document_of(revision, language(request)) if revision else None,
            "status": policy.status(session=db, subject_id=user.id),
            "next": next_path,
            "declined": declined,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/privacy/review")
def review_form(
    request: Request, db: DbSession, settings: SettingsDep, user: SignedIn, next: str = ""
) -> Response:
    return _review_page(request, db, settings, user, next_path=next)


@router.post("/privacy/review")
def review_submit(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedIn,
) -> Response:
    revision = policy.in_force(session=db)
    decision = form.get("decision")
    if revision is None or decision not in ("accept", "decline"):
        return _review_page(request, db, settings, user, status_code=422)
    document = policy.document_of(revision, language(request))
    answer = policy.record_acceptance if decision == "accept" else policy.record_decline
    answer(
        session=db,
        keyring=keyring,
        subject_id=user.id,
        document=document,
        channel=Channel.WEB,
        actor=accounts.user_actor(keyring=keyring, user=user),
        clock=clock,
    )
    if decision == "accept":
        return redirect(request, safe_next(form.get("next")))
    return _review_page(request, db, settings, user, declined=True)


@router.post("/account/close")
def close_account(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedIn,
) -> Response:
    try:
        report = erasure.close_account(
            session=db, user=user, password=form.get("password", ""), keyring=keyring, clock=clock
        )
    except ValidationFailed as exc:
        rollback_unless_kept(db, exc)
        return _review_page(
            request, db, settings, user, declined=True, errors=exc.errors, status_code=422
        )
    return closed_page(request, settings, report)


def closed_page(request: Request, settings, report: erasure.ErasureReport) -> Response:
    """The account is gone: say so, and say what a legal hold kept, until when and why."""
    response = render(request, "privacy/closed.html", settings=settings,
                      context={"report": report})  # fmt: skip
    forget_session(response, settings)
    return response


# -- consents ------------------------------------------------------------------------------


def _consents_context(db, keyring, user) -> dict[str, object]:
    history = consent.history(session=db, keyring=keyring, subject_id=user.id)
    return {
        "terms": {p: t for p, t in TERMS.items() if not t.per_device},
        "operator": OPERATOR,
        "channel_labels": CHANNEL_LABELS,
        "state": consent.current_state(session=db, subject_id=user.id),
        "history": {p: [h for h in history if h.purpose is p] for p in Purpose},
    }


@router.get("/account/privacy")
def consents_page(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    return render(
        request,
        "privacy/consents.html",
        settings=settings,
        user=user,
        context=_consents_context(db, keyring, user),
    )


@router.post("/account/privacy/consents/{purpose}")
def change_consent(
    request: Request,
    purpose: str,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    try:
        chosen = Purpose(purpose)
    except ValueError:
        raise NotFound(N_("This page does not exist.")) from None
    revision = policy.in_force(session=db)
    if revision is None:
        raise PermissionDenied(N_("No privacy policy has been published yet."))
    consent.change(
        session=db,
        keyring=keyring,
        subject_id=user.id,
        purpose=chosen,
        granted=form.get("granted") == "1",
        policy_document_id=policy.document_of(revision, language(request)).id,
        channel=Channel.WEB,
        actor=accounts.user_actor(keyring=keyring, user=user),
        clock=clock,
        user_agent=request.headers.get("user-agent"),
        client_ip=client_address(request),
    )
    context = _consents_context(db, keyring, user)
    if request.headers.get("hx-request") == "true":
        context["purpose"] = chosen
        return render(
            request, "privacy/_consent.html", settings=settings, user=user, context=context
        )
    return redirect(request, "/account/privacy")
