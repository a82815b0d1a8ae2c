"""The store contract suite: one suite, every store (drivers and back-ends in conftest.py)."""

from __future__ import annotations


def test_create_then_load(store):
    assert store.load("smoke-1") == ([], 0)
    assert store.save("smoke-1", [{"role": "user", "content": "hi"}], 0) == 1
    assert store.load("smoke-1") == ([{"role": "user", "content": "hi"}], 1)
