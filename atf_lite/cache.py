"""On-disk cache for expensive experiment results.

A result is stored under a key built from the experiment's name, its configuration, and a hash
of the atf_lite source code, so that changing either the configuration or any code that could
change the result recomputes it instead of silently reusing stale numbers.

The cache directory is ``$ATF_LITE_CACHE_DIR`` when set, else ``~/.cache/atf_lite``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import pickle
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._validation import check_bool, check_callable, describe
from .perturbation import perturbation_seed

__all__ = ["cache_dir", "source_hash", "cache_key", "cached"]


def cache_dir() -> pathlib.Path:
    """The directory holding cached results (created on demand)."""
    root = os.environ.get("ATF_LITE_CACHE_DIR")
    path = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "atf_lite"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 (first 16 hex digits) of every ``.py`` file of the installed atf_lite package."""
    package_root = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package_root.rglob("*.py")):
        digest.update(str(path.relative_to(package_root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The default text of an object, ``<module.Class object at 0x7f…>``: it names a memory address,
# which differs in every process, so a key built from it would never be found again.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable_text(value: Any) -> str:
    """``str(value)`` for a value JSON cannot encode, if that text is the same in every run."""
    text = str(value)
    if _ADDRESS.search(text):
        raise TypeError(
            f"config holds a {type(value).__name__} whose text {text!r} contains a memory "
            "address, so the cache key would change in every run; put plain values (numbers, "
            "strings, lists, dicts) in config instead"
        )
    return text


def cache_key(name: str, config: dict[str, Any]) -> str:
    """A file-name-safe key for experiment ``name`` run with the JSON-serialisable ``config``.

    Values JSON cannot encode are written as their text (``str``), which must not depend on the
    process: an object whose text holds a memory address is refused.
    """
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"name must be alphanumeric with '-' or '_', got {describe(name)}")
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {describe(config)}")
    try:
        payload = json.dumps(config, sort_keys=True, default=_stable_text)
    except ValueError as exc:  # a circular reference
        raise ValueError(f"config cannot be written as JSON: {exc}") from exc
    # A run under the perturbation switch must never share results with an ordinary one.
    perturbation = perturbation_seed()
    if perturbation is not None:
        payload += f"|perturbation={perturbation}"
    digest = hashlib.sha256((payload + source_hash()).encode()).hexdigest()[:20]
    return f"{name}-{digest}"


def cached(
    name: str, config: dict[str, Any], compute: Callable[[], Any], *, use_cache: bool = True
) -> Any:
    """Return ``compute()``, loading it from / saving it to the cache when ``use_cache``.

    The result must be picklable.  Writes are atomic (temporary file, then rename), so an
    interrupted run never leaves a truncated cache entry behind.
    """
    check_callable(compute, "compute")
    key = cache_key(name, config)  # checks name and config, also when the cache is off
    if not check_bool(use_cache, "use_cache"):
        return compute()
    path = cache_dir() / f"{key}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    result = compute()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return result
