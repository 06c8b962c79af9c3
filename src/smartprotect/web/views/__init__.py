"""The site's pages."""

from fastapi import APIRouter

from smartprotect.web.views import (
    accounts,
    devices,
    fmd,
    pages,
    privacy,
    profile,
    rights,
    unsubscribe,
)

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(accounts.router)
router.include_router(privacy.router)
router.include_router(profile.router)
router.include_router(rights.router)
router.include_router(unsubscribe.router)
router.include_router(devices.router)
router.include_router(fmd.router)
