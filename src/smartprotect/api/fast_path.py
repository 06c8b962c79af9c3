"""The device check-in, answered ahead of the middleware stack.

Check-ins are most of the traffic, and most of each one's cost was the stack of middleware
and routing every request passes through. Here a well-formed check-in from a valid device
is answered directly, with the same security headers. Anything else (a refused credential,
invalid input, an error) is handed, body and all, to the regular stack and its route for the
same path, which gives the usual problem responses: one implementation, two ways in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Larger bodies take the regular path (and its limit); a check-in of 100 fixes is ~20 KB.
FAST_BODY_LIMIT = 64 * 1024

Answer = Callable[[Request, bytes], Awaitable[Response]]


class FastPath:
    def __init__(
        self, app: ASGIApp, *, routes: dict[str, Answer], headers: list[tuple[str, str]]
    ) -> None:
        self.app = app
        self.routes = routes
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] == "POST":
            answer = self.routes.get(scope["path"])
        if answer is None:
            await self.app(scope, receive, send)
            return
        chunks, ended, disconnected = await _read_body(receive)
        if disconnected:
            return  # the device went away mid-request: nothing was stored
        response = None
        if ended and sum(map(len, chunks)) <= FAST_BODY_LIMIT:
            try:
                response = await answer(Request(scope), b"".join(chunks))
            except Exception:
                response = None  # the regular stack answers it, with its error handling
        if response is None:
            await self.app(scope, _replay(chunks, ended, receive), send)
            return
        for name, value in self.headers:
            response.headers.setdefault(name, value)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[list[bytes], bool, bool]:
    """The body's chunks, read up to just past the limit; whether that is all of it; and
    whether the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return chunks, False, True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return chunks, True, False
        if size > FAST_BODY_LIMIT:
            return chunks, False, False


def _replay(chunks: list[bytes], ended: bool, receive: Receive) -> Receive:
    """Give the regular stack the body already read, then whatever is left of it."""
    pending = list(chunks)

    async def replayed() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {
                "type": "http.request",
                "body": chunk,
                "more_body": bool(pending) or not ended,
            }
        return await receive()

    return replayed
