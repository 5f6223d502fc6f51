import pytest

from atf_lite import cache
from atf_lite.progress import progress_bar, progress_enabled


def test_cached_computes_once_and_keys_on_config():
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert cache.cached("demo", {"a": 1}, compute) == {"value": 1}
    assert cache.cached("demo", {"a": 1}, compute) == {"value": 1}
    assert cache.cached("demo", {"a": 2}, compute) == {"value": 2}
    assert cache.cached("demo", {"a": 1}, compute, use_cache=False) == {"value": 3}
    assert len(calls) == 3
    assert cache.cache_key("demo", {"a": 1, "b": 2}) == cache.cache_key("demo", {"b": 2, "a": 1})


def test_cache_key_includes_source_hash(monkeypatch):
    before = cache.cache_key("demo", {"a": 1})
    monkeypatch.setattr(cache, "source_hash", lambda: "0" * 16)
    assert cache.cache_key("demo", {"a": 1}) != before


def test_cache_rejects_bad_name():
    with pytest.raises(ValueError, match="name"):
        cache.cache_key("../escape", {})


def test_progress_bar_can_be_silenced(monkeypatch):
    monkeypatch.setenv("ATF_LITE_PROGRESS", "0")
    assert not progress_enabled()
    assert list(progress_bar(range(3))) == [0, 1, 2]
    monkeypatch.setenv("ATF_LITE_PROGRESS", "1")
    assert progress_enabled()
