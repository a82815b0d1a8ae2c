"""The store contract suite: one suite, every store. Drivers (Python, JavaScript) and back-ends (moto,
the Firestore fake and emulator, Azurite, redis behind the Upstash front) are registered in conftest.py;
each test uses its own session ids, so the back-ends are shared by the whole test session."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from framework.runtime.agent_sessions import StoreConflict, StoreError
from tests.stores.conftest import AGENT

TOOL_TURN = [
    {"role": "user", "content": "Quel temps fait-il à Zürich ? 🌧️ « vite »"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "weather", "arguments": json.dumps({"city": "Zürich", "unit": "°C"})}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 3.5, \"sky\": \"pluie\"}"},
    {"role": "assistant", "content": "Il pleut : 3,5 °C. 𝄞 \u2028 \\n \"quoted\" </script> \u0000 {{x}} ${y}"},
]


def sid() -> str:
    return "t-" + uuid.uuid4().hex


def plain(message: str) -> None:
    """A plain sentence: one line, no traceback, no exception dump."""
    assert message and "\n" not in message and "Traceback" not in message, message
    assert len(message) < 300, message


def append_turn(store, session_id: str, turn: list[dict], tries: int = 200) -> int:
    """What the runtime does: load, append, save; on a conflict, again on the fresh history."""
    for _ in range(tries):
        messages, version = store.load(session_id)
        try:
            return store.save(session_id, messages + turn, version)
        except StoreConflict:
            time.sleep(0.001)
    raise AssertionError("too many conflicts")


def test_create_then_load_then_append(store):
    session = sid()
    assert store.load(session) == ([], 0)
    first = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert store.save(session, first, 0) == 1
    assert store.load(session) == (first, 1)
    second = first + [{"role": "user", "content": "again"}, {"role": "assistant", "content": "yes"}]
    assert store.save(session, second, 1) == 2
    assert store.load(session) == (second, 2)


def test_sessions_never_mix(store):
    one, two = sid(), sid()
    store.save(one, [{"role": "user", "content": "one"}], 0)
    store.save(two, [{"role": "user", "content": "two"}], 0)
    assert store.load(one)[0] == [{"role": "user", "content": "one"}]
    assert store.load(two)[0] == [{"role": "user", "content": "two"}]


def test_a_second_save_with_the_same_version_conflicts(store):
    session = sid()
    store.save(session, [{"role": "user", "content": "a"}], 0)
    with pytest.raises(StoreConflict):
        store.save(session, [{"role": "user", "content": "b"}], 0)
    assert store.save(session, [{"role": "user", "content": "c"}], 1) == 2
    with pytest.raises(StoreConflict):
        store.save(session, [{"role": "user", "content": "d"}], 1)
    with pytest.raises(StoreConflict):
        store.save(session, [{"role": "user", "content": "e"}], 7)
    assert store.load(session) == ([{"role": "user", "content": "c"}], 2)


def test_a_save_on_a_version_that_was_never_stored_conflicts(store):
    with pytest.raises(StoreConflict):
        store.save(sid(), [{"role": "user", "content": "a"}], 3)


def test_two_instances_conflict_like_one(store_case):
    """Two instances of the function (two store objects) on one session."""
    first, second = store_case.open(), store_case.open()
    session = sid()
    first.save(session, [{"role": "user", "content": "a"}], 0)
    assert second.load(session)[1] == 1
    assert first.save(session, [{"role": "user", "content": "b"}], 1) == 2
    with pytest.raises(StoreConflict):
        second.save(session, [{"role": "user", "content": "c"}], 1)
    assert second.load(session) == ([{"role": "user", "content": "b"}], 2)
    assert second.save(session, [{"role": "user", "content": "c"}], 2) == 3
    assert first.load(session) == ([{"role": "user", "content": "c"}], 3)


@pytest.mark.parametrize("shared", [True, False], ids=["one-instance", "an-instance-each"])
def test_concurrent_appends_lose_nothing(store_case, shared):
    session, threads, turns = sid(), 8, 4
    stores = [store_case.open()] * threads if shared else [store_case.open() for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for turn in range(turns):
                append_turn(stores[index], session, [{"role": "user", "content": f"{index}:{turn}"},
                                                     {"role": "assistant", "content": f"ok {index}:{turn}"}])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    messages, version = stores[0].load(session)
    assert version == threads * turns
    assert len(messages) == 2 * threads * turns
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert sorted(users) == sorted(f"{i}:{t}" for i in range(threads) for t in range(turns))
    for index in range(threads):  # each thread's turns in its own order, each answer after its question
        mine = [u for u in users if u.startswith(f"{index}:")]
        assert mine == [f"{index}:{t}" for t in range(turns)]
    for position in range(0, len(messages), 2):
        assert messages[position + 1]["content"] == "ok " + messages[position]["content"]


def test_expires_is_set_and_renewed(store_case):
    store = store_case.open(ttl_hours=2)
    session = sid()
    before = int(time.time())
    store.save(session, [{"role": "user", "content": "a"}], 0)
    expires = store_case.backend.raw.expires(session)
    assert before + 7200 - 2 <= expires <= int(time.time()) + 7200 + 2
    later = store_case.open(ttl_hours=3)  # renewed from the time of the save: now + 3 h
    later.save(session, [{"role": "user", "content": "b"}], 1)
    renewed = store_case.backend.raw.expires(session)
    assert before + 3 * 3600 - 2 <= renewed <= int(time.time()) + 3 * 3600 + 2
    store.save(session, [{"role": "user", "content": "c"}], 2)
    assert store_case.backend.raw.expires(session) < renewed  # each save sets it anew, not max()


def test_an_expired_record_loads_as_absent_and_is_overwritten(store_case):
    store = store_case.open()
    raw = store_case.backend.raw
    session = sid()
    raw.put(session, AGENT, json.dumps([{"role": "user", "content": "old"}]), 5, int(time.time()) - 10)
    assert store.load(session) == ([], 0)
    assert store.save(session, [{"role": "user", "content": "new"}], 0) == 1
    assert store.load(session) == ([{"role": "user", "content": "new"}], 1)
    assert raw.expires(session) > time.time() + 3600


def test_an_expired_record_is_overwritten_without_a_load(store_case):
    """Another instance's save of a new conversation onto an expired record it never read."""
    raw = store_case.backend.raw
    session = sid()
    raw.put(session, AGENT, json.dumps([{"role": "user", "content": "old"}]), 5, int(time.time()) - 10)
    assert store_case.open().save(session, [{"role": "user", "content": "new"}], 0) == 1
    assert store_case.open().load(session) == ([{"role": "user", "content": "new"}], 1)


def test_the_history_round_trips_byte_for_byte(store):
    session = sid()
    history = TOOL_TURN + [{"role": "user", "content": "".join(chr(c) for c in range(1, 0x800, 7))},
                           {"role": "assistant", "content": "\U0001f600 \U0001f916" * 50,
                            "extra": {"n": [1, 2.5, None, True], "empty": [], "map": {}}}]
    store.save(session, history, 0)
    loaded, _ = store.load(session)
    assert loaded == history
    assert json.dumps(loaded, ensure_ascii=False) == json.dumps(history, ensure_ascii=False)


def test_a_history_near_the_store_limit_round_trips(store):
    """Long enough to take several Table Storage properties, with characters of every UTF-8 width."""
    session = sid()
    piece = "a é € 🤖 "  # 1, 2, 3 and 4 bytes
    budget = store.max_bytes - 2000
    content = piece * (budget // len(piece.encode()))
    history = [{"role": "user", "content": content}]
    store.save(session, history, 0)
    assert store.load(session) == (history, 1)


def test_a_history_over_the_limit_is_a_store_error(store):
    with pytest.raises(StoreError) as caught:
        store.save(sid(), [{"role": "user", "content": "x" * (store.max_bytes + 10)}], 0)
    plain(str(caught.value))


def test_tokens_add_atomically_from_threads(store):
    key, day = "k" + uuid.uuid4().hex[:10], "2026-12-02"
    assert store.tokens_used(key, day) == 0
    totals: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                totals.append(store.add_tokens(key, day, 7))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    assert sorted(totals) == [7 * n for n in range(1, 81)]
    assert store.tokens_used(key, day) == 560
    assert store.tokens_used(key, "2026-12-03") == 0
    assert store.add_tokens(key, "2026-12-03", 1) == 1


def test_a_counter_expires_two_days_after_its_day(store_case):
    store, key = store_case.open(), "k" + uuid.uuid4().hex[:10]
    store.add_tokens(key, "2026-12-31", 5)
    assert store_case.backend.raw.counter_expires(key, "2026-12-31") == 1798675200 + 2 * 86400  # 2026-12-31T00:00Z


def test_a_foreign_record_is_refused(store_case):
    store, raw = store_case.open(), store_case.backend.raw
    session = sid()
    raw.put(session, "another-agent", json.dumps([{"role": "user", "content": "theirs"}]), 1,
            int(time.time()) + 3600)
    with pytest.raises(StoreError) as caught:
        store.load(session)
    plain(str(caught.value))
    assert "theirs" not in str(caught.value)
    with pytest.raises((StoreConflict, StoreError)):
        store.save(session, [{"role": "user", "content": "mine"}], 1)
    with pytest.raises((StoreConflict, StoreError)):
        store.save(session, [{"role": "user", "content": "mine"}], 0)
    with pytest.raises(StoreError):
        store.load(session)  # still theirs


def test_a_store_of_another_agent_does_not_see_ours(store_case):
    session = sid()
    store_case.open().save(session, [{"role": "user", "content": "ours"}], 0)
    with pytest.raises(StoreError):
        store_case.open(agent="another-agent").load(session)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "{\"role\": \"user\"}", "null", ""],
                         ids=["bad-json", "not-objects", "not-a-list", "null", "empty"])
def test_an_unreadable_record_is_refused(store_case, text):
    store, raw = store_case.open(), store_case.backend.raw
    session = sid()
    raw.put(session, AGENT, text, 1, int(time.time()) + 3600)
    with pytest.raises(StoreError) as caught:
        store.load(session)
    plain(str(caught.value))


def test_an_unreachable_store_is_a_store_error(store_case):
    env = store_case.backend.unreachable_env
    store = store_case.open(env=env)
    secrets = [value for name, value in env.items()
               if len(value) > 8 and any(word in name.upper() for word in ("SECRET", "TOKEN", "KEY", "CONNECTION"))]
    started = time.monotonic()
    for call in (lambda: store.load(sid()), lambda: store.save(sid(), [{"role": "user", "content": "a"}], 0),
                 lambda: store.add_tokens("k1", "2026-12-02", 5), lambda: store.tokens_used("k1", "2026-12-02")):
        with pytest.raises(StoreError) as caught:
            call()
        message = str(caught.value)
        plain(message)
        for secret in secrets:
            for part in [secret] + [p.split("=", 1)[-1] for p in secret.split(";") if "Key=" in p]:
                assert part not in message
    assert time.monotonic() - started < 20
