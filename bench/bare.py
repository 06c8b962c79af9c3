"""The baseline: a bare Starlette endpoint returning a constant, served the same way."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def constant(_request):
    return JSONResponse({"check_in_after_seconds": 900, "commands": []})


app = Starlette(routes=[Route("/", constant, methods=["GET", "POST"])])
