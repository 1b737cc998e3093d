"""What config sections are made of: :func:`key` (a field with its help and check), the schedule
section, and :func:`section`, which turns a piece's constructor into the section of its settings.

A piece (an encoder, a prior, ...) declares its settings once, as the keyword-only parameters of
its constructor (name, type annotation, default), with a class attribute ``KEYS`` giving each
one line of help and the check its values must pass::

    class MixtureOfGaussians(Prior):
        KEYS = {"components": ("number of Gaussians", checks.POSITIVE)}

        def __init__(self, latent_dim: int, *, components: int = 10) -> None: ...

The positional parameters (the data's shape, ``latent_dim``, ...) are structural: the registry
passes them, they are not settings. A list or dataclass default in a signature is shared by
nothing: each config deep-copies it, and the build hands a piece copies of its section's values.
Piece modules import this module, which imports no piece.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from xae import checks as C
from xae.checks import Check


def key(default: Any, help: str, check: Check | None = None) -> Any:
    """A config field: its default, one line of help and the check its values must pass
    (types are checked by :func:`xae.config._coerce`; ranges and choices by
    :func:`xae.config.validate`). List and dataclass defaults are deep-copied per instance."""
    meta = {"help": help, "check": check}
    if isinstance(default, list) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


def table(module: str, name: str, item: str | None = None) -> Check:
    """A choice among the names of a table that lives elsewhere (read when checked: no import
    cycle)."""
    def names() -> Any:
        found = getattr(importlib.import_module(module), name)
        return found[item] if item else found
    return C.one_of(names)


@dataclass
class ScheduleConfig:
    """A schedule ``step -> value`` (see :mod:`xae.schedules`): ``start`` ramps to ``value``
    over ``warmup`` steps (linear, sigmoid, cosine), repeats every ``period`` steps ramping over
    its first ``ratio`` (cyclical), or follows ``stages`` pairs ``[step, value]`` (staged)."""

    kind: str = key("constant", "the schedule's shape", table("xae.schedules", "SCHEDULES"))
    value: float = key(1.0, "the final (or constant) value", C.NON_NEGATIVE_FLOAT)
    start: float = key(0.0, "the initial value of a ramp", C.NON_NEGATIVE_FLOAT)
    warmup: int = key(1000, "steps of the ramp", C.NON_NEGATIVE)
    period: int = key(1000, "cyclical: steps per cycle", C.POSITIVE)
    ratio: float = key(0.5, "cyclical: share of a cycle spent ramping",
                       C.between(0.0, 1.0, lo_open=True))
    stages: list = key([], "staged: [step, value] pairs", C.STAGES)


def settings_of(cls: type) -> list[inspect.Parameter]:
    """The keyword-only parameters of ``cls``'s constructor: its settings. A constructor that
    takes ``*args`` or ``**kwargs`` is a TypeError (a misspelled setting would vanish there)."""
    params = inspect.signature(cls.__init__).parameters.values()
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{cls.__name__}.__init__ takes {'*' * (1 + (p.kind is p.VAR_KEYWORD))}"
                            f"{p.name}; a piece names each setting as a keyword-only parameter")
    return [p for p in params if p.kind is p.KEYWORD_ONLY]


def section(cls: type, name: str, module: str) -> type | None:
    """The config section of the piece ``cls`` registered as ``name``: a dataclass with one
    field per setting of ``cls`` (see :func:`settings_of`), typed by its annotation, defaulting
    to its default, with help and check from ``cls.KEYS``. None when ``cls`` has no settings.

    ``module`` becomes the class's ``__module__`` (where it must be findable by name, for
    pickle). A setting without a default, type or help, or a ``KEYS`` entry that is not a
    setting, is a TypeError."""
    params = settings_of(cls)
    keys: dict[str, tuple[str, Check | None]] = getattr(cls, "KEYS", {})
    names = [p.name for p in params]
    if set(keys) != set(names):
        raise TypeError(f"{cls.__name__}.KEYS must give help for exactly its settings "
                        f"{names}: missing {sorted(set(names) - set(keys))}, not settings "
                        f"{sorted(set(keys) - set(names))}")
    hints = get_type_hints(cls.__init__)
    for p in params:
        if p.default is p.empty or p.name not in hints:
            raise TypeError(f"{cls.__name__}'s setting '{p.name}' needs a type annotation and "
                            f"a default")
    if not params:
        return None
    fields = [(p.name, hints[p.name], key(p.default, *keys[p.name])) for p in params]
    title = re.sub(r"\W|_", "", name.title())
    return dataclasses.make_dataclass(
        f"{title}Settings", fields,
        namespace={"__module__": module, "__doc__": f"The settings of '{name}' "
                                                    f"({cls.__name__})."})
