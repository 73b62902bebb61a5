"""A_PASSWORD: the pairing interface locks out after repeated refusals (AuthorizationLockout)."""

from __future__ import annotations

from mother_unit.pairing_link import AuthorizationLockout


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_max_failures_and_backs_off_growingly() -> None:
    clock = Clock()
    lock = AuthorizationLockout(max_failures=3, base_s=2.0, clock=clock)
    assert lock.failed() is None
    assert lock.failed() is None
    assert lock.locked_for() == 0.0
    assert lock.failed() == 2.0
    assert lock.locked_for() == 2.0
    clock.now += 2.5
    assert lock.locked_for() == 0.0
    assert [lock.failed(), lock.failed(), lock.failed()] == [None, None, 4.0]
    clock.now += 5
    assert [lock.failed(), lock.failed(), lock.failed()] == [None, None, 8.0]


def test_backoff_is_capped() -> None:
    clock = Clock()
    lock = AuthorizationLockout(max_failures=1, base_s=2.0, max_s=5.0, clock=clock)
    assert [lock.failed(), lock.failed(), lock.failed()] == [2.0, 4.0, 5.0]


def test_success_clears_failures_but_not_the_level() -> None:
    clock = Clock()
    lock = AuthorizationLockout(max_failures=2, base_s=1.0, clock=clock)
    assert lock.failed() is None
    lock.succeeded()
    assert lock.failed() is None  # the failure before the success no longer counts
    assert lock.failed() == 1.0
    clock.now += 2
    lock.succeeded()
    assert [lock.failed(), lock.failed()] == [None, 2.0]  # the level stays


def test_a_quiet_period_forgets_everything() -> None:
    clock = Clock()
    lock = AuthorizationLockout(max_failures=2, base_s=1.0, forget_after_s=60.0, clock=clock)
    assert [lock.failed(), lock.failed()] == [None, 1.0]
    clock.now += 61
    assert [lock.failed(), lock.failed()] == [None, 1.0]
