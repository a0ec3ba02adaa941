"""Two exact shortcuts in Great Expectations 1.24's pandas validation: the same judgements, in 40% less time.

The gates hand GX small frames of facts (one row a metric) and each expectation picks its row with a
``row_condition`` (``metric=="..."``): 476 expectations over 22 checkpoints in the raw gate. At 1,000 people the
data is nothing and GX's per-expectation overhead is the whole raw gate (measured: 138 s, 113 s of it in GX's
checkpoints, at the load of the test suite). Two of its costs are repeated work with identical results:

- **the row filter** (``PandasExecutionEngine._apply_row_condition_filter``) runs ``DataFrame.query`` for every
  metric an expectation needs: 3,242 queries for 476 distinct conditions, each parsed again by pandas' ``eval``
  (44 s of the 138 s). :func:`install` keeps the filtered frame of each condition for the batch frame it was
  computed from (the cache holds one batch frame at a time, is dropped after each checkpoint run by
  :func:`forget`, and hands out copies, so no caller can alter it).
- **the expectation's configuration** (``Expectation.configuration``, a pydantic ``dict()`` and a new
  ``ExpectationConfiguration``) is rebuilt for every key that ``_get_domain_kwargs``, ``_get_success_kwargs`` and
  ``_get_runtime_kwargs`` read: ~17 rebuilds a call, 81,814 in one raw gate (25 s). :func:`install` builds it once
  for the outermost of those calls, which only read it; the next call builds it again.

Both are pure functions of state the validation does not change while they run, so the results are the same
object for object (tests/integration/test_gx_speed.py runs gates with and without the shortcuts and compares every
outcome). Raw gate at 1,000 people, quiet machine: 14.6 s -> 8.7 s (three runs each). They replace private GX
methods: :data:`VERIFIED` holds the SHA-256 of each replaced method's source as
read from GX 1.24.1, and :func:`install` leaves GX untouched (and says so in the log) when the installed GX differs,
so an upgrade is slower, never wrong; the test fails on it, which says to re-verify.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

# SHA-256 of inspect.getsource() of each method replaced or wrapped, as verified (GX 1.24.1).
VERIFIED = {
    "PandasExecutionEngine._apply_row_condition_filter":
        "917e05df63a2a6afc3aa568c034f118b803a88f209046f05e1927a6731edeae8",
    "Expectation.configuration":
        "017b2b788132d570b370ac396d96dbc7ff212418ffcf6c4c63b56a6518022685",
    "Expectation._get_domain_kwargs":
        "91ad2a0670ff463ad99457f1e5c351b7fbd64cac8f6c200a18a437552f2adfd0",
    "Expectation._get_success_kwargs":
        "fe376905e18bc525a128d251281e7f48309e82f820f23c8e1d93d85e2739b26f",
    "Expectation._get_runtime_kwargs":
        "4196ca2a2cdb5bbfdf5e7540eaa58048d6e6881819ed004041ef56151667d8d0",
}

_state: dict[str, Any] = {"installed": False, "originals": {}, "held_off": False}
_pinned = threading.local()
_memo_holders: weakref.WeakSet = weakref.WeakSet()  # the execution engines holding a filter memo


def _targets() -> dict[str, tuple[type, str]]:
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import Expectation

    return {name: ({"PandasExecutionEngine": PandasExecutionEngine, "Expectation": Expectation}[name.split(".")[0]],
                   name.split(".")[1]) for name in VERIFIED}


def source_digests() -> dict[str, str]:
    """SHA-256 of the installed GX's source of each method :func:`install` replaces (the originals)."""
    out = {}
    for name, (cls, attr) in _targets().items():
        member = _state["originals"].get(name, cls.__dict__[attr])
        function = member.fget if isinstance(member, property) else member
        out[name] = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    return out


def _filter_memo(original):
    @functools.wraps(original)
    def apply_row_condition_filter(self, data, row_condition, domain_kwargs):
        memo = getattr(self, "_oncopipe_filter_memo", None)
        if memo is None or memo[0] is not data:  # a new batch frame: forget the last one
            memo = (data, {})
            self._oncopipe_filter_memo = memo
            _memo_holders.add(self)
        key = repr((row_condition, domain_kwargs.get("condition_parser")))
        if key not in memo[1]:
            memo[1][key] = original(self, data, row_condition, domain_kwargs)
        return memo[1][key].copy()

    return apply_row_condition_filter


def _pinned_configuration(original: property) -> property:
    def configuration(self):
        pinned = getattr(_pinned, "configs", {}).get(id(self))
        return pinned if pinned is not None else original.fget(self)

    return property(configuration, doc=original.__doc__)


def _pinning(original, build):
    @functools.wraps(original)
    def pinning(self, *args, **kwargs):
        configs = _pinned.__dict__.setdefault("configs", {})
        if id(self) in configs:  # an inner call of an outer one: already pinned
            return original(self, *args, **kwargs)
        configs[id(self)] = build(self)
        try:
            return original(self, *args, **kwargs)
        finally:
            del configs[id(self)]

    return pinning


def forget() -> None:
    """Drop every filter memo (the batch frame and its filtered rows): a checkpoint run is over."""
    for engine in list(_memo_holders):
        engine.__dict__.pop("_oncopipe_filter_memo", None)
    _memo_holders.clear()


def install() -> bool:
    """Install the shortcuts (idempotent). False, and GX left as it is, when its source is not the verified one."""
    if _state["installed"]:
        return True
    if _state["held_off"]:  # inside without_shortcuts(): every gate opened there runs GX as shipped
        return False
    digests = source_digests()
    changed = sorted(name for name, digest in digests.items() if VERIFIED[name] != digest)
    if changed:
        log.info("GX shortcuts not installed: %s differ from the verified GX 1.24.1 source", ", ".join(changed))
        return False
    targets = _targets()
    originals = {name: cls.__dict__[attr] for name, (cls, attr) in targets.items()}
    build = originals["Expectation.configuration"].fget
    replacements = {
        "PandasExecutionEngine._apply_row_condition_filter":
            _filter_memo(originals["PandasExecutionEngine._apply_row_condition_filter"]),
        "Expectation.configuration": _pinned_configuration(originals["Expectation.configuration"]),
    }
    for name in ("Expectation._get_domain_kwargs", "Expectation._get_success_kwargs",
                 "Expectation._get_runtime_kwargs"):
        replacements[name] = _pinning(originals[name], build)
    for name, (cls, attr) in targets.items():
        setattr(cls, attr, replacements[name])
    _state.update(installed=True, originals=originals)
    return True


def uninstall() -> None:
    """Put GX's own methods back."""
    if not _state["installed"]:
        return
    for name, (cls, attr) in _targets().items():
        setattr(cls, attr, _state["originals"][name])
    _state.update(installed=False, originals={})


@contextmanager
def without_shortcuts() -> Iterator[None]:
    """GX as shipped for the duration, even for contexts opened in it (tests compare both)."""
    was = _state["installed"]
    uninstall()
    _state["held_off"] = True
    try:
        yield
    finally:
        _state["held_off"] = False
        if was:
            install()
