"""Waking waiting devices: a wake-up between looking in the database and subscribing is not
lost."""

from __future__ import annotations

import uuid

from smartprotect.commands import notify
from smartprotect.commands.notify import Notifier


def test_a_wake_up_after_the_mark_is_noticed_and_one_before_it_is_not():
    notifier = Notifier()
    device, other = uuid.uuid4(), uuid.uuid4()
    notifier._wake(device)  # before the waiter looked: the database look saw that command
    mark = notifier.mark()
    assert not notifier.woken_since(device, mark)
    notifier._wake(device)  # after it looked, before it subscribed
    assert notifier.woken_since(device, mark)
    assert not notifier.woken_since(other, mark)
    event = notifier.subscribe(other)
    notifier._wake(other)
    assert event.is_set() and notifier.woken_since(other, mark)


def test_the_record_of_wake_ups_stays_bounded(monkeypatch):
    monkeypatch.setattr(notify, "WOKEN_KEPT", 3)
    notifier = Notifier()
    for _ in range(10):
        notifier._wake(uuid.uuid4())
    assert len(notifier._woken) <= 3
