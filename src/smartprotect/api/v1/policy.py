"""The privacy policy revision in force."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from smartprotect.deps import DbSession
from smartprotect.errors import NotFound, ValidationFailed
from smartprotect.i18n import LANGUAGES, N_
from smartprotect.privacy.policy import service as policy
from smartprotect.web.templating import language

router = APIRouter(tags=["privacy"])


class PolicyRead(BaseModel):
    id: uuid.UUID
    version: str
    language: str
    sha256: str
    published_at: datetime
    text: str


@router.get("/policy", response_model=PolicyRead)
def policy_in_force(request: Request, db: DbSession, lang: str | None = None) -> PolicyRead:
    """The revision in force, in the requested (or negotiated) language if it exists."""
    if lang is not None and lang not in LANGUAGES:
        raise ValidationFailed({"lang": N_("Choose one of the supported languages.")})
    document = policy.document_in_force(session=db, language=lang or language(request))
    if document is None:
        raise NotFound(N_("No privacy policy has been published yet."))
    return PolicyRead(
        id=document.id,
        version=document.version,
        language=document.language,
        sha256=document.sha256,
        published_at=document.published_at,
        text=document.text,
    )
