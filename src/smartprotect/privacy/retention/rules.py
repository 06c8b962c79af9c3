"""What personal data each table holds and how long it may be kept (clause 2.4).

Every table that holds information about a user declares here, through `register`, the
category of that information (clause 2.3's list, or clause 2.2's technical information),
the column that records when it was provided, whose it is, and how long it is kept. The
retention job destroys what is older than that; the report shows what is held and the
oldest item of each category. A table is either registered or listed in `EXEMPT` with the
reason it holds no personal data to destroy: a test keeps that list complete.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

# Clause 2.4: personal data, technical information and other user information are kept for
# one year from the date they were provided.
RETENTION = timedelta(days=365)


class Category(enum.StrEnum):
    """The kinds of information clause 2 names, as holds and reports refer to them."""

    NAMES = "names"  # 2.3.1
    PASSPORT = "passport"  # 2.3.2
    EMAIL = "email"  # 2.3.3
    DEVICE_ACCOUNTS = "device_accounts"  # 2.3.4
    PHONE = "phone"  # 2.3.5
    GEOLOCATION = "geolocation"  # 2.3.6
    OTHER = "other"  # 2.3.7
    TECHNICAL = "technical"  # 2.2


@dataclass(frozen=True)
class Rule:
    """Rows of `model` hold `category` and are destroyed `keep` after `provided_at`."""

    category: Category
    model: Any
    provided_at: Any
    # Selects the rows about these subjects (user ids), which a legal hold spares; None
    # where rows name no account (a throttle's hashed keys, mail queued to an address).
    of_subjects: Callable[[Collection[uuid.UUID]], ColumnElement[bool]] | None
    keep: timedelta = RETENTION
    # Where a table holds several categories, which of its rows this rule covers.
    where: ColumnElement[bool] | None = None
    # Columns to empty instead of deleting the row: an item of a row that lives on.
    clear: tuple[str, ...] = ()
    # The item is what the account exists for (its address): when it is past its time, and
    # its owner was told long enough before, the whole account is erased (retention.job).
    erases_account: bool = False

    def __post_init__(self) -> None:
        if self.keep > RETENTION:
            raise ValueError(f"{self.table}: nothing may be kept longer than {RETENTION}")

    @property
    def table(self) -> str:
        return self.model.__tablename__


_RULES: dict[tuple[str, Category], Rule] = {}

# Tables that hold no personal data of their own to destroy by age, and why.
EXEMPT: dict[str, str] = {
    "audit_events": "names subjects only by keyed pseudonym; personal details are sealed "
    "with the subject's key, which erasure destroys",
    "audit_chain_head": "one row: the chain's last sequence number and hash",
    "subject_keys": "the keys themselves; a destroyed key's row is the proof of shredding",
    "consent_events": "the consent ledger, the evidence the law asks for; names the subject "
    "by id, with personal details sealed with their key",
    "policy_acceptances": "evidence of acceptance the law asks for; personal details sealed",
    "policy_declines": "evidence of a declined revision; personal details sealed",
    "policy_documents": "the published policy texts",
    "policy_revisions": "the published policy revisions",
    "theft_incidents": "anonymous statistics: a date and a region, no device or owner",
    "legal_holds": "the holds themselves, kept while in force and as the record of them",
    "held_records": "what a hold kept of an erased account: destroyed when the hold ends, "
    "not by age (retention.service.destroy_unheld_records)",
    "job_leases": "which server instance runs a job",
    "access_generation": "one row: a counter of changes to device access, nobody's data",
}


def register(rule: Rule) -> Rule:
    """Declare that a table holds a category of personal data, kept for `rule.keep`."""
    key = (rule.table, rule.category)
    if key in _RULES and _RULES[key] is not rule:
        raise ValueError(f"{rule.table} already has a retention rule for {rule.category}")
    _RULES[key] = rule
    return rule


def rules() -> list[Rule]:
    """Every registered rule, in a stable order."""
    import smartprotect.models  # noqa: F401 (every model module registers its rules)

    return [_RULES[name] for name in sorted(_RULES)]
