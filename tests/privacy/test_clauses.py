"""The clause map: one entry per clause of the policy, naming controls and tests that exist."""

from __future__ import annotations

import importlib
import re

import pytest

from smartprotect.i18n import gettext_for
from smartprotect.privacy.clauses import BY_NUMBER, CLAUSES, STATUS_LABELS, Status
from smartprotect.privacy.evidence import EVIDENCE
from tests.conftest import POLICY_DIR, ROOT

# "1.1. In this ...", "2.3.1 Last name ...", "4.1.1. Execution ..." (numbers, then a space).
CLAUSE_LINE = re.compile(r"^(\d+\.\d+(?:\.\d+)?)\.?\s")
POLICY_TEXTS = sorted(POLICY_DIR.glob("*.txt"))


def clause_numbers(text: str) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := CLAUSE_LINE.match(line))]


def _key(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))


def test_the_parser_reads_every_numbering_style():
    text = "1. Terms\n1.1. Defs\n2.3 Heading\n2.3.1 Name;\n4.1.1. Purpose\nRevision 15.06.2017\n"
    assert clause_numbers(text) == ["1.1", "2.3", "2.3.1", "4.1.1"]


@pytest.mark.parametrize("path", POLICY_TEXTS, ids=lambda p: p.name)
def test_every_clause_of_the_policy_has_exactly_one_entry(path):
    numbers = clause_numbers(path.read_text(encoding="utf-8"))
    assert numbers[0] == "1.1" and numbers[-1] == "9.1"
    assert len(numbers) == len(set(numbers)), "a clause number repeats in the text"
    catalogued = [clause.number for clause in CLAUSES]
    assert len(catalogued) == len(set(catalogued)), "a clause has more than one entry"
    assert sorted(set(numbers) - set(catalogued), key=_key) == [], "clauses without an entry"
    assert sorted(set(catalogued) - set(numbers), key=_key) == [], "entries for no clause"


def test_both_languages_have_the_same_clauses():
    texts = {path.name.split(".")[-2]: path.read_text(encoding="utf-8") for path in POLICY_TEXTS}
    assert set(texts) >= {"en", "ru"}
    assert clause_numbers(texts["en"]) == clause_numbers(texts["ru"])


def test_entries_are_in_the_order_of_the_policy():
    numbers = [clause.number for clause in CLAUSES]
    assert numbers == sorted(numbers, key=_key)
    assert set(BY_NUMBER) == set(numbers)


def resolve(dotted: str) -> object:
    """The module, class, function or constant a dotted path names."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


CONTROLS = sorted({control for clause in CLAUSES for control in clause.controls})
TESTS = sorted({test for clause in CLAUSES for test in clause.tests})


@pytest.mark.parametrize("control", CONTROLS)
def test_every_control_exists(control):
    assert control.startswith("smartprotect.")
    try:
        resolve(control)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{control} does not resolve: {exc}")


def test_the_resolver_refuses_what_does_not_exist():
    assert resolve("smartprotect.privacy.clauses.CLAUSES") is CLAUSES
    with pytest.raises(AttributeError):
        resolve("smartprotect.privacy.clauses.no_such_thing")
    with pytest.raises(ModuleNotFoundError):
        resolve("no_such_package.module")


def names_a_test(node_id: str) -> bool:
    """Whether a pytest node id `path::[Class::]function[params]` names a test in the tree."""
    path, _, rest = node_id.partition("::")
    function = re.sub(r"\[.*\]$", "", rest).split("::")[-1]
    file = ROOT / path
    if not rest or not file.is_file() or not function.startswith("test_"):
        return False
    definition = re.compile(rf"^\s*(async\s+)?def {re.escape(function)}\(", re.M)
    return definition.search(file.read_text(encoding="utf-8")) is not None


@pytest.mark.parametrize("node_id", TESTS)
def test_every_named_test_exists(node_id):
    assert names_a_test(node_id), f"{node_id} names no test in the tree"


def test_the_test_check_refuses_what_does_not_exist():
    here = "tests/privacy/test_clauses.py::"
    assert names_a_test(here + "test_every_named_test_exists")
    assert names_a_test(here + "test_every_control_exists[smartprotect.x]")
    assert not names_a_test(here + "test_nothing_of_the_kind")
    assert not names_a_test("tests/no_such_file.py::test_every_named_test_exists")
    assert not names_a_test("tests/privacy/test_clauses.py")


@pytest.mark.parametrize("clause", CLAUSES, ids=lambda c: c.number)
def test_every_entry_is_complete(clause):
    assert clause.title and isinstance(clause.status, Status)
    if clause.status is Status.ENFORCED:
        assert clause.controls, "an enforced clause names the controls that enforce it"
        assert clause.tests, "an enforced clause names the tests that prove it"
    else:
        assert clause.reason, f"a {clause.status} clause says why"
    if clause.status in (Status.PARTIAL, Status.PLANNED):
        assert "Missing:" in clause.reason, "it says what is missing"
    for name in clause.evidence:
        assert name in EVIDENCE, f"no evidence function named {name}"


def test_titles_reasons_and_statuses_are_translated():
    ru = gettext_for("ru")
    texts = [c.title for c in CLAUSES] + [c.reason for c in CLAUSES if c.reason]
    texts += list(STATUS_LABELS.values())
    untranslated = [text for text in texts if ru(text) == text]
    assert untranslated == []
    assert len({c.title for c in CLAUSES}) == len(CLAUSES), "titles tell clauses apart"
