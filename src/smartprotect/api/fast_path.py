"""The busiest calls, answered ahead of the middleware stack.

Device check-ins (and FMD phones' uploads and polls) are most of the traffic, and most of
each one's cost was the stack of middleware and routing every request passes through. Here a
well-formed call from a valid device is answered directly, with the same security headers.
Anything else (a refused credential, invalid input, an error) is handed, body and all, to the
regular stack and its route for the same path, which gives the usual problem responses (or
the FMD protocol's refusals): one implementation, two ways in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Larger bodies take the regular path (and its limit); a check-in of 100 fixes is ~20 KB.
FAST_BODY_LIMIT = 64 * 1024

# Takes the request's scope and body; returns the JSON body of a 200 answer, or raises.
Answer = Callable[[Scope, bytes], Awaitable[bytes]]


class FastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[tuple[str, str], Answer],
        headers: list[tuple[str, str]],
    ) -> None:
        self.app = app
        self.routes = routes
        # Encoded once: building a response's headers per request was a measurable share of
        # a check-in's time.
        self.raw_headers = [(b"content-type", b"application/json")] + [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = None
        if scope["type"] == "http":
            answer = self.routes.get((scope["method"], scope["path"]))
        if answer is None:
            await self.app(scope, receive, send)
            return
        chunks, ended, disconnected = await _read_body(receive)
        if disconnected:
            return  # the device went away mid-request: nothing was stored
        body = None
        if ended and sum(map(len, chunks)) <= FAST_BODY_LIMIT:
            try:
                body = await answer(scope, b"".join(chunks))
            except Exception:
                body = None  # the regular stack answers it, with its error handling
        if body is None:
            await self.app(scope, _replay(chunks, ended, receive), send)
            return
        headers = [*self.raw_headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
