"""Personal text that a row keeps only sealed with its subject's key, used like a plain
attribute: `user.email` reads and writes the address, the table holds ciphertext.

Why: a database keeps copies of what it once stored (PostgreSQL's dead row versions, WAL
segments, planner statistics; any backup). If a person's email, phone or names ever reach
the files in clear, erasing the row cannot take those copies back. Stored only sealed, the
copies are ciphertext, unreadable once erasure destroys the subject's key.

Values that must be looked up (an address at sign-in, its uniqueness) also get a blind
index: a keyed hash, which matches a value without revealing it.

The keyring comes from the session (given to `db.make_session_factory`): a row is opened
and sealed within the session that loaded it, never outside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from smartprotect.db import KEYRING
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.security import keyed_hash

# The plain values of an object's sealed attributes, as read or set in this session.
_PLAIN = "_smartprotect_plain"
# Attributes set while the object had no session (a new row): sealed when it is flushed.
_UNSEALED = "_smartprotect_unsealed"


class SealedFieldError(RuntimeError):
    """A sealed attribute was used where it cannot be opened or sealed (no session or key)."""


def keyring_of(session: Session) -> Keyring:
    """The keyring a session seals and opens personal data with."""
    keyring = session.info.get(KEYRING)
    if callable(keyring):
        keyring = session.info[KEYRING] = keyring()
    if keyring is None:
        raise SealedFieldError("this session has no keyring: personal data cannot be opened")
    return keyring


def blind_index(*, secret: str, purpose: str, value: str) -> str:
    """The keyed hash a sealed value is looked up by."""
    return keyed_hash(secret=secret, purpose=f"blind-index:{purpose}", value=value)


def index_in(session: Session, *, purpose: str, value: str) -> str:
    """`blind_index` with the session's keyring, for queries."""
    return blind_index(secret=keyring_of(session).secret, purpose=purpose, value=value)


class Sealed:
    """A text attribute stored in `column` sealed with the key of the subject named by the
    attribute `subject` (and bound to table, attribute name and row id), optionally with a
    blind index in `index`, computed for the kind of value `index_as` (values of one kind
    match across tables) over the value's `index_form`. `empty` is what an absent value
    reads as."""

    def __init__(
        self, column: str, *, subject: str = "id", index: str | None = None,
        index_as: str | None = None, index_form: Callable[[str], str] = str,
        empty: str | None = None,
    ) -> None:  # fmt: skip
        self.column = column
        self.subject = subject
        self.index = index
        self.index_as = index_as
        self.index_form = index_form
        self.empty = empty
        self.name = column

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        # `Model.email == x` in a query would quietly compare this descriptor, not a column.
        raise TypeError(f"{self.name} is sealed: query it by its blind index")

    __hash__ = object.__hash__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        plain = obj.__dict__.setdefault(_PLAIN, {})
        sealed = getattr(obj, self.column)
        # Cached together with the ciphertext it came from: a refreshed row is opened again.
        cached = plain.get(self.name)
        if cached is not None and (cached[0] is sealed or _unsealed(obj, self.name)):
            return cached[1]
        if sealed is None:
            return self.empty
        session = _session_of(obj, self.name)
        value = keys.decrypt_field(
            session=session, master=keyring_of(session).master,
            subject_id=getattr(obj, self.subject), table=obj.__tablename__, column=self.name,
            row_id=obj.id, ciphertext=sealed,
        )  # fmt: skip
        plain[self.name] = (sealed, value)
        return value

    def __set__(self, obj: Any, value: str | None) -> None:
        if value == self.empty:
            value = None
        session = object_session(obj)
        if session is None:
            # A new row: its id, subject and session come later; sealed at flush.
            obj.__dict__.setdefault(_PLAIN, {})[self.name] = (None, value)
            obj.__dict__.setdefault(_UNSEALED, set()).add(self.name)
            return
        self.seal(obj, session, value)

    def seal(self, obj: Any, session: Session, value: str | None) -> None:
        keyring = keyring_of(session)
        if obj.id is None:
            obj.id = uuid.uuid4()
        sealed = None
        if value is not None:
            sealed = keys.encrypt_field(
                session=session, master=keyring.master, subject_id=getattr(obj, self.subject),
                table=obj.__tablename__, column=self.name, row_id=obj.id, plaintext=value,
            )  # fmt: skip
        setattr(obj, self.column, sealed)
        if self.index is not None:
            purpose = self.index_as or self.name
            index = None if value is None else blind_index(
                secret=keyring.secret, purpose=purpose, value=self.index_form(value))  # fmt: skip
            setattr(obj, self.index, index)
        obj.__dict__.setdefault(_PLAIN, {})[self.name] = (sealed, value)
        obj.__dict__.get(_UNSEALED, set()).discard(self.name)


def _unsealed(obj: Any, name: str) -> bool:
    return name in obj.__dict__.get(_UNSEALED, ())


def _session_of(obj: Any, name: str) -> Session:
    session = object_session(obj)
    if session is None:
        raise SealedFieldError(
            f"{type(obj).__name__}.{name} is sealed: it is opened only within its session"
        )
    return session


@event.listens_for(Session, "before_flush")
def _seal_new_rows(session: Session, _context, _instances) -> None:
    for obj in list(session.new):
        pending = obj.__dict__.get(_UNSEALED)
        if not pending:
            continue
        owner = type(obj)
        for name in sorted(pending):
            descriptor: Sealed = getattr(owner, name)
            descriptor.seal(obj, session, obj.__dict__[_PLAIN][name][1])
