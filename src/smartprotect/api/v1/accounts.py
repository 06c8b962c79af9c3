"""Accounts over the API: registration, the current user and personal API tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from smartprotect.accounts import service as accounts
from smartprotect.accounts.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    RegistrationRequest,
    UserRead,
)
from smartprotect.deps import (
    ApiUser,
    ClockDep,
    DbSession,
    KeyringDep,
    SettingsDep,
    client_address,
)
from smartprotect.privacy.consent.models import Channel

router = APIRouter(tags=["accounts"])


class RegistrationAccepted(BaseModel):
    status: str = "verification_sent"
    detail: str = "If the address can be registered, a verification link has been mailed to it."


@router.post("/accounts", status_code=status.HTTP_202_ACCEPTED, response_model=RegistrationAccepted)
def register(
    request: Request,
    body: RegistrationRequest,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> RegistrationAccepted:
    """Register; the answer is the same whether or not the address already has an account."""
    accounts.register(
        session=db,
        data=body,
        consents=body,
        channel=Channel.API,
        clock=clock,
        links=accounts.Links(base_url=settings.base_url),
        user_agent=request.headers.get("user-agent"),
        client_ip=client_address(request),
        keyring=keyring,
    )
    return RegistrationAccepted()


@router.get("/me", response_model=UserRead)
def me(user: ApiUser) -> UserRead:
    """The account the token belongs to."""
    return UserRead.model_validate(user)


@router.get("/tokens", response_model=list[ApiTokenRead])
def list_tokens(db: DbSession, user: ApiUser) -> list[ApiTokenRead]:
    """The account's personal API tokens (never their secrets)."""
    return [ApiTokenRead.model_validate(t) for t in accounts.list_api_tokens(session=db, user=user)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=ApiTokenCreated)
def create_token(
    body: ApiTokenCreate, db: DbSession, user: ApiUser, clock: ClockDep, keyring: KeyringDep
) -> ApiTokenCreated:
    """Create a token; its secret is in this answer only."""
    token, raw = accounts.create_api_token(
        session=db, user=user, name=body.name, clock=clock, keyring=keyring
    )
    return ApiTokenCreated(**ApiTokenRead.model_validate(token).model_dump(), token=raw)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(
    token_id: uuid.UUID, db: DbSession, user: ApiUser, clock: ClockDep, keyring: KeyringDep
) -> Response:
    """Revoke a token at once."""
    accounts.revoke_api_token(
        session=db, user=user, token_id=token_id, clock=clock, keyring=keyring
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
