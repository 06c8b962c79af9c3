"""The JSON API, version 1: authenticated with personal API tokens."""

from fastapi import APIRouter

from smartprotect.api.v1 import accounts, agent, devices, policy

router = APIRouter()
router.include_router(accounts.router)
router.include_router(policy.router)
router.include_router(agent.router)
router.include_router(devices.router)
