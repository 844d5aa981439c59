"""Small composable value rules for config validation (used by `dualtune.config_checks`).

A rule maps a resolved, plain-Python value (what ``OmegaConf.to_container`` gives) to None when it is
fine, or to a short description of what was expected instead ("an integer >= 1 or null"); ``{key}`` in
that description stands for the checked key.
"""

from __future__ import annotations


def is_int(v) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    """An int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bounds(lo, hi, lo_open=False, hi_open=False) -> str:
    parts = ([f"{'>' if lo_open else '>='} {lo}"] if lo is not None else []) + (
        [f"{'<' if hi_open else '<='} {hi}"] if hi is not None else [])
    return " and ".join(parts)


def number(lo=None, hi=None, lo_open=False, hi_open=False, null=False, integer=False):
    """A number (an integer if ``integer``) within the bounds; ``null`` allows None."""
    kind = "an integer" if integer else "a number"
    want = f"{kind}{' ' + _bounds(lo, hi, lo_open, hi_open) if lo is not None or hi is not None else ''}"
    want += " or null" if null else ""

    def rule(v):
        if v is None and null:
            return None
        if not (is_int(v) if integer else is_num(v)):
            return want
        if lo is not None and (v <= lo if lo_open else v < lo) or hi is not None and (v >= hi if hi_open else v > hi):
            return want
        return None
    return rule


def integer(lo=None, hi=None, null=False):
    """An integer within ``[lo, hi]``; ``null`` allows None."""
    return number(lo, hi, null=null, integer=True)


def boolean(null=False):
    """true or false (not 0/1, not a string)."""
    return lambda v: None if isinstance(v, bool) or (v is None and null) else "true or false"


def text(null=False):
    """A non-empty string; ``null`` allows None."""
    return lambda v: None if (isinstance(v, str) and v.strip()) or (v is None and null) else (
        "a non-empty string" + (" or null" if null else ""))


def choice(*values, null=False):
    """One of ``values``; ``null`` allows None."""
    return lambda v: None if v in values or (v is None and null) else (
        f"one of {list(values)}" + (" or null" if null else ""))


def any_of(*rules):
    """Passes if any rule passes."""
    def rule(v):
        errors = [r(v) for r in rules]
        return None if None in errors else " or ".join(errors)
    return rule


def list_of(item, min_len=1, unique=True, what="values"):
    """A list (not a single string) of items passing ``item``, at least ``min_len`` long."""
    def rule(v):
        if isinstance(v, str):
            return f"a list of {what}, not a string (on the command line: {{key}}=[{v}])"
        if not isinstance(v, list) or len(v) < min_len or any(item(x) for x in v) or (unique and len(set(map(
                str, v))) != len(v)):
            return f"a list of {min_len}+ {'distinct ' if unique else ''}{what} ({item('')})"
        return None
    return rule


def mapping(value, keys=None):
    """A dict whose values pass ``value`` (and whose keys are in ``keys`` when given)."""
    def rule(v):
        if not isinstance(v, dict) or any(value(x) for x in v.values()) or (keys and not set(v) <= set(keys)):
            return f"a mapping {'with keys from ' + str(list(keys)) + ' ' if keys else ''}to {value(object())}"
        return None
    return rule
