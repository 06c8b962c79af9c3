"""The database: declarative base, column types and engine/session factories."""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

import anyio
from sqlalchemy import (
    DateTime,
    Enum,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.expression import ColumnElement, TableValuedAlias
from sqlalchemy.types import TypeDecorator, TypeEngine, Uuid

from smartprotect.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 5000

log = logging.getLogger(__name__)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zones and hands back naive values; normalising here keeps
    comparisons identical on both engines.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict] = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class Model(Base):
    """A table whose rows are identified by a random UUID."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def time_ordered_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562): milliseconds since the epoch, then 74 random bits.

    For tables that grow by many rows a second (location fixes): consecutive ids land next to
    each other in the primary key's index, instead of each on a random page of it that every
    commit would have to write again. Such ids reveal when the row was made, so they are used
    only where that time is stored beside them anyway."""
    global _last_time_ordered
    milliseconds = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (
        (milliseconds & (1 << 48) - 1) << 80
        | 0x7 << 76  # version
        | (random_bits >> 62 & 0xFFF) << 64
        | 0b10 << 62  # variant
        | random_bits & (1 << 62) - 1
    )
    with _time_ordered_lock:
        # Within one millisecond, one past the last id made here: ids of one process keep
        # the order they were made in (RFC 9562, 6.2), which is the order FMD clients get
        # their items back in.
        if value >> 80 == _last_time_ordered >> 80 and value <= _last_time_ordered:
            value = _last_time_ordered + 1
        _last_time_ordered = value
    return uuid.UUID(int=value)


_time_ordered_lock = threading.Lock()
_last_time_ordered = 0


def normalise_url(url: str) -> str:
    """Select psycopg 3 for plain PostgreSQL URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database, with SQLite tuned for a web server."""
    url = normalise_url(settings.database_url)
    if url.startswith("sqlite"):
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _configure_sqlite)
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that
        # SAVEPOINTs work. IMMEDIATE takes the write lock up front: a deferred transaction
        # that reads, then writes after another commit, fails at once ("database is
        # locked") instead of waiting; this way writers queue on busy_timeout instead.
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # Query parameters (emails, names) stay out of error messages and logs.
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )


def make_async_engine(engine: Engine, *, pool_size: int) -> AsyncEngine:
    """An asyncio engine on the same PostgreSQL database as `engine`, for work done on the
    event loop (the check-in writer, long-polls).

    Its connections are not pinged before each use: that is a round trip per batch, a sixth
    of a check-in's server time. A connection found lost when used is invalidated instead,
    and the transaction run once more on a fresh one (`once_more_if_lost`)."""
    return create_async_engine(
        engine.url,
        pool_pre_ping=False,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=0,
    )


T = TypeVar("T")


async def once_more_if_lost(transaction: Callable[[], Awaitable[T]]) -> T:
    """Run a transaction; if it failed because its connection was lost (the database
    restarted, or closed it while idle), run it once more, on a fresh connection.

    The pool has invalidated the lost connection, and every other connection it held before
    the same restart is found lost in turn, each by the one transaction that uses it first.
    A connection lost during COMMIT leaves it unknown whether the first attempt was stored:
    what runs here must bear being done twice. A check-in stored twice keeps its fixes once
    (unique by device and time), its "last seen" the later. A command whose delivery was
    stored but not answered is handed out again once the device has not reported on it for
    a minute. An FMD phone's upload is stored twice, and a command it polled is not given
    again (as when its answer is lost on the way)."""
    try:
        return await transaction()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("a database connection was lost; trying again on a fresh one")
    return await transaction()


# An execution option: this connection only reads (an export streamed for seconds), so on
# SQLite it takes no write lock, and on PostgreSQL it reads one snapshot.
READ_ONLY = "smartprotect_read_only"
# An execution option: on SQLite, take the write lock only if it is free at once, else fail
# ("database is locked") instead of waiting, so the caller can wait elsewhere (a thread).
NO_WAIT = "smartprotect_no_wait"


def _begin_sqlite(connection) -> None:
    options = connection.get_execution_options()
    if options.get(READ_ONLY, False):
        _driver_execute(connection, "BEGIN")
        return
    if not options.get(NO_WAIT, False):
        _driver_execute(connection, "BEGIN IMMEDIATE")
        return
    _driver_execute(connection, "PRAGMA busy_timeout=0")
    try:
        _driver_execute(connection, "BEGIN IMMEDIATE")
    finally:
        _driver_execute(connection, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _driver_execute(connection, sql: str) -> None:
    """Run a statement straight on the driver: through SQLAlchemy's execution, beginning a
    transaction took a sixth of a check-in batch's time on the event loop. Its errors are
    SQLAlchemy's, as if it had gone through it."""
    dbapi = connection.dialect.loaded_dbapi
    try:
        connection.connection.driver_connection.execute(sql)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc


# Where a session finds the keyring that opens and seals personal fields (keys.sealed).
KEYRING = "smartprotect.keyring"


def _keyring_info(keyring: Any) -> dict[str, Any]:
    return {KEYRING: keyring} if keyring else {}


@contextmanager
def read_only_session(engine: Engine, *, keyring: Any = None) -> Iterator[Session]:
    """A session that only reads, from one consistent snapshot, holding no write lock."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as connection:
        session = Session(bind=connection, expire_on_commit=False, info=_keyring_info(keyring))
        try:
            yield session
        finally:
            session.close()
            connection.rollback()


def _configure_sqlite(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is overwritten, not left in free space (erasure without residue).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


# Set on a session whose transaction erased someone's data: once it commits, old copies of
# the pages it changed are cleared out of the database files (`scrub`).
SCRUB = "smartprotect.scrub"


def request_scrub(session: Session) -> None:
    session.info[SCRUB] = True


# How long an erasure's request waits for readers to let the log be emptied; the retention
# job tries again every run, with the usual patience.
SCRUB_PATIENCE_MS = 200


def scrub(engine: Engine, *, patience_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> bool:
    """Clear superseded copies of data out of the database files, after an erasure.

    On SQLite, deleted content is overwritten in place (`secure_delete`), but the write-ahead
    log still holds earlier versions of the changed pages until it is checkpointed and
    emptied; while it waits for readers, writers wait too, so a request gives it only a
    moment. Returns False if readers kept the log from being emptied (the retention job's
    next run finishes it). PostgreSQL keeps dead row versions until VACUUM and old WAL
    segments until recycled; nothing is done here for it, and there is nothing to wait for.
    """
    if engine.dialect.name != "sqlite":
        return True
    # On the driver's connection, outside any transaction (a checkpoint cannot run in one).
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        connection.execute(f"PRAGMA busy_timeout={int(patience_ms)}")
        try:
            busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        raw.close()
    return not busy


def make_session_factory(engine: Engine, *, keyring: Any = None) -> sessionmaker[Session]:
    """Sessions on this engine; with a keyring (or a function loading it on first use) they
    can open and seal personal fields."""
    return sessionmaker(bind=engine, expire_on_commit=False, info=_keyring_info(keyring))


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a CLI command or job: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def str_enum(enum_class: type[enum.Enum], length: int = 32) -> Enum:
    """A string column holding an enum's values (not names), portable across engines."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class DatabaseGate:
    """Requests wait here, off the worker thread pool, for one of a few database slots.

    A request's transaction can begin in one worker thread (a dependency's first query) and
    continue in another (the handler). Were every worker thread blocked waiting for the
    database (SQLite's single write lock, or a free connection in PostgreSQL's pool), the
    requests already holding the database could never get a thread to finish: a starvation
    deadlock. So requests first queue here, on threads of their own, and only as many as the
    database can serve at once go on: one for SQLite, the pool's size (less a reserve for the
    mail sender and health checks) for PostgreSQL.
    """

    WAITERS = 10_000

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)
        self._waiters = anyio.CapacityLimiter(self.WAITERS)

    async def __aenter__(self) -> None:
        # A free slot is taken right here: a trip to a worker thread and back costs a turn
        # of the event loop, milliseconds under load (most of a check-in batch's time).
        if self._semaphore.acquire(blocking=False):
            return
        try:
            await anyio.to_thread.run_sync(self._semaphore.acquire, limiter=self._waiters)
        except BaseException:
            # The acquiring thread always runs to the end, so the slot is ours: give it back.
            self._semaphore.release()
            raise

    async def __aexit__(self, *exc_info) -> None:
        self._semaphore.release()


# Connections kept out of the gate's slots, for work that does not pass through it.
RESERVED_CONNECTIONS = 4


def make_gate(engine: Engine) -> DatabaseGate:
    if engine.dialect.name == "sqlite":
        return DatabaseGate(1)
    capacity = engine.pool.size() + engine.pool._max_overflow
    return DatabaseGate(max(capacity - RESERVED_CONNECTIONS, 1))


def _binds(compiled: Any, dialect: Dialect) -> list[_Bind]:
    """A compiled statement's parameters, in the order the driver takes them, each with its
    type's conversion (or the value the statement itself fixes)."""
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    binds = []
    for name in names:
        bind = compiled.binds[name]
        # A column of values (`unnested`) is converted value by value, then written out.
        array = isinstance(bind.type, ArrayLiteral)
        type_ = bind.type.item_type if array else bind.type
        convert = type_.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(type_, LargeBinary):
            # Both drivers take bytes as they are; wrapping each (and comparing each with the
            # one before for a repeat, never found for ciphertext) only costs time.
            convert = None
        fixed = None if bind.required else (bind.effective_value,)
        binds.append(_Bind(name, convert, fixed, _array_literal(type_) if array else None))
    return binds


def _on_driver(
    connection: Connection, sql: str, params: Any, *, many: bool = False, fetch: bool = False
) -> list[Any] | None:
    """Run one statement on the connection's driver cursor, in its transaction.

    What `Connection.exec_driver_sql` does that matters is kept: listeners of
    `before_cursor_execute` hear of it, and errors are handled by SQLAlchemy's own handler
    (wrapped; a lost connection invalidated with the rest of its pool). Its result objects
    and execution context are not built: on the check-in path, that bookkeeping cost more
    than the database's own work for the batch's few statements."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        rows = cursor.fetchall() if fetch else None
    except BaseException as exc:
        # SQLAlchemy's own handling, as for any statement: a driver error wrapped; if the
        # connection was lost, it and every other connection the pool made before it are
        # replaced (a restarted server has dropped them all); one interrupted mid-statement
        # (a cancelled task) is not given back to the pool.
        connection._handle_dbapi_exception(exc, sql, params, cursor, None)
        raise  # not reached: the handler raises
    cursor.close()
    return rows


class BulkWrite:
    """An INSERT or UPDATE run for many rows at once: compiled once per dialect, each value
    converted by its column's own type, but without SQLAlchemy's per-row bookkeeping, which
    otherwise costs the busiest writes (check-ins) more than the database does."""

    def __init__(
        self,
        statement: Insert | Update | Callable[[str], Insert | Update],
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        # The statement, or (for a dialect's own clauses) a function of the dialect's name
        # building it. An INSERT names the columns its rows give; an UPDATE's own bound
        # parameters do.
        self._statement = statement
        self._keys = list(columns) if columns is not None else None
        self._prepared: dict[str, tuple[str, list[_Bind], bool]] = {}  # by dialect

    def _prepare(self, dialect: Dialect) -> tuple[str, list[_Bind], bool]:
        key = f"{dialect.name}+{dialect.driver}"
        if key not in self._prepared:
            statement = self._statement
            if callable(statement):
                statement = statement(dialect.name)
            compiled = statement.compile(dialect=dialect, column_keys=self._keys)
            self._prepared[key] = (str(compiled), _binds(compiled, dialect), compiled.positional)
        return self._prepared[key]

    def execute(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Write these rows (each a dict with every parameter, hashable values) in this
        session's transaction."""
        if not rows:
            return
        connection = session.connection()
        sql, binds, positional = self._prepare(connection.dialect)
        columns = [
            _converted(
                [bind.fixed[0]] * len(rows) if bind.fixed is not None
                else [row[bind.name] for row in rows],
                bind.convert,
            )
            for bind in binds
        ]  # fmt: skip
        if positional:
            params: Any = list(zip(*columns, strict=True))
        else:
            names = [bind.name for bind in binds]
            params = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        _on_driver(connection, sql, params, many=True)


def _converted(values: list[Any], convert: Callable[[Any], Any] | None) -> list[Any]:
    """Values converted by their type's bind processor. Rows often repeat one (the batch's
    time, a device's id), as the same object in a row: that is converted once (looking
    each value up instead cost more, hashing a uuid being Python code)."""
    if convert is None:
        return values
    out = []
    previous: Any = _NOTHING
    converted = None
    for value in values:
        if value is not previous:
            previous, converted = value, convert(value)
        out.append(converted)
    return out


_NOTHING = object()


class ArrayStatement:
    """One PostgreSQL statement over whole batches of rows: each parameter the statement
    takes as an array (`unnested`, `array_of`) is given as a list of values and sent as one
    array literal, the others as single values. The driver then sends one statement for
    the batch, not one a row, which costs both sides less (measured)."""

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._prepared: dict[str, tuple[str, list[_Bind], list]] = {}  # by driver

    def _prepare(self, dialect: Dialect) -> tuple[str, list[_Bind], list]:
        key = f"{dialect.name}+{dialect.driver}"
        if key not in self._prepared:
            if dialect.name != "postgresql":
                raise NotImplementedError(f"array statements need PostgreSQL, not {dialect.name}")
            compiled = self._statement.compile(dialect=dialect)
            # Its parameters are given by name (psycopg's style).
            assert not compiled.positional, dialect.driver
            results = _result_processors(self._statement.exported_columns, dialect)
            self._prepared[key] = (str(compiled), _binds(compiled, dialect), results)
        return self._prepared[key]

    def execute(self, session: Session, **params: Any) -> list[tuple[Any, ...]]:
        """Run it in this session's transaction (its own, if that is in autocommit mode);
        the rows it returns, if any."""
        connection = session.connection()
        sql, binds, results = self._prepare(connection.dialect)
        values: dict[str, Any] = {}
        for bind in binds:
            value = bind.fixed[0] if bind.fixed is not None else params[bind.name]
            if bind.literal is not None:
                value = bind.literal(_converted(list(value), bind.convert))
            elif bind.convert is not None:
                value = bind.convert(value)
            values[bind.name] = value
        return _converted_rows(_on_driver(connection, sql, values, fetch=bool(results)) or [],
                               results)  # fmt: skip


def unnested(name: str, **types: TypeEngine) -> TableValuedAlias:
    """A batch's rows as a table, for an `ArrayStatement`: one array parameter a column,
    named after it, unnested side by side."""
    arrays = [array_of(key, type_) for key, type_ in types.items()]
    return func.unnest(*arrays).table_valued(*types).render_derived(name)


def array_of(key: str, type_: TypeEngine) -> ColumnElement[Any]:
    """The batch's column `key` (of `type_`'s values) as a PostgreSQL array, for an
    `ArrayStatement` (as `unnested` holds it)."""
    # Cast to `varchar(n)`, a longer value would be cut short without a word; as unbounded
    # text it is refused when stored in its column, as it is row by row.
    element = String() if isinstance(type_, String) and type_.length else type_
    return cast(bindparam(key, type_=ArrayLiteral(type_)), postgresql.ARRAY(element))


class ArrayLiteral(TypeDecorator[str]):
    """A column of a batch's values, sent to PostgreSQL as one array literal (`'{a,b}'`)
    that the statement casts to its array type.

    The driver would adapt a list itself, but value by value in Python (quoting each with a
    regular expression), which cost more than sending every row as a statement of its own
    (measured); the literal is joined from the values' own text forms."""

    impl = Text
    cache_ok = True

    def __init__(self, item_type: TypeEngine) -> None:
        super().__init__()
        self.item_type = item_type


def _bytea_element(value: bytes) -> str:
    # bytea's hex form, its backslash escaped for the array's own quoting.
    return '"\\\\x' + value.hex() + '"'


def _text_element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain_element(value: Any) -> str:
    # A uuid's, a number's or a time's text form holds no quote or backslash.
    return '"' + str(value) + '"'


def _array_literal(item_type: TypeEngine) -> Callable[[list[Any]], str]:
    """How a list of `item_type`'s values (converted by its type) is written as a
    PostgreSQL array literal: every element quoted, NULL for None."""
    kind = item_type.impl if isinstance(item_type, TypeDecorator) else item_type
    if isinstance(kind, LargeBinary):
        element: Callable[[Any], str] = _bytea_element
    elif isinstance(kind, String):
        element = _text_element
    elif isinstance(kind, (Uuid, Integer, DateTime)):
        element = _plain_element
    else:
        raise TypeError(f"no array literal for {item_type!r}")

    def literal(values: list[Any]) -> str:
        return "{" + ",".join("NULL" if v is None else element(v) for v in values) + "}"

    return literal


class DriverRead:
    """A SELECT on the busiest path, run straight on the driver (`_on_driver`): compiled once
    per dialect, its parameters and its columns converted by their types.

    It may have one list parameter (`WHERE x IN (...)`), given as `items`: the statement is
    built by `build(n)` for n placeholders named `item_0` ... `item_{n-1}`, with n rounded up
    to a power of two (the list padded with its last item) so that a few shapes of it serve
    every batch, and stay in the driver's cache of prepared statements."""

    def __init__(self, build: Callable[[int], Select]) -> None:
        self._build = build
        self._prepared: dict[tuple[str, int], tuple[str, list[_Bind], bool, list]] = {}

    def _prepare(self, dialect: Dialect, n: int) -> tuple[str, list[_Bind], bool, list]:
        key = (f"{dialect.name}+{dialect.driver}", n)
        if key not in self._prepared:
            statement = self._build(n)
            compiled = statement.compile(dialect=dialect)
            results = _result_processors(statement.selected_columns, dialect)
            binds = _binds(compiled, dialect)
            self._prepared[key] = (str(compiled), binds, compiled.positional, results)
        return self._prepared[key]

    def all(
        self, session: Session, *, items: Sequence[Any] = (), **params: Any
    ) -> list[tuple[Any, ...]]:
        """Its rows, in this session's transaction."""
        connection = session.connection()
        n = 1 << (len(items) - 1).bit_length() if items else 0
        sql, binds, positional, results = self._prepare(connection.dialect, n)
        for i in range(n):
            params[f"item_{i}"] = items[min(i, len(items) - 1)]
        values: Any = []
        for bind in binds:
            value = bind.fixed[0] if bind.fixed is not None else params[bind.name]
            values.append(value if bind.convert is None else bind.convert(value))
        if not positional:
            values = dict(zip([bind.name for bind in binds], values, strict=True))
        return _converted_rows(_on_driver(connection, sql, values, fetch=True) or [], results)


def _result_processors(columns: Iterable[Any], dialect: Dialect) -> list[Any]:
    """How each of these result columns' values is converted (None: taken as it comes)."""
    return [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]


def _converted_rows(rows: list[Any], results: list[Any]) -> list[tuple[Any, ...]]:
    if not any(results):
        return [tuple(row) for row in rows]
    return [
        tuple(value if convert is None else convert(value)
              for convert, value in zip(results, row, strict=True))
        for row in rows
    ]  # fmt: skip


class _Bind(NamedTuple):
    name: str
    convert: Callable[[Any], Any] | None
    # A value the statement itself fixes (as a one-tuple, since it may be None).
    fixed: tuple[Any] | None
    # For a column of values (`unnested`): how it is written as one array literal.
    literal: Callable[[list[Any]], str] | None = None
