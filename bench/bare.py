"""The baseline: a bare Starlette endpoint returning a constant, served the same way.

It answers the check-in path too, so that the load generator can send it exactly the
requests it sends the real server (same method, body and headers); it reads none of them.
"""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def constant(_request):
    return JSONResponse({"check_in_after_seconds": 900, "commands": []})


app = Starlette(
    routes=[
        Route("/", constant, methods=["GET", "POST"]),
        Route("/api/v1/agent/check-in", constant, methods=["POST"]),
    ]
)
