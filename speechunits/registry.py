"""The one registry idiom: a named dict filled by a decorator.

    FRONTENDS = Registry("front end")

    @FRONTENDS.register("fbank")
    class Fbank(nn.Module): ...

    FRONTENDS.get("fbank")   # -> Fbank; unknown names list the known ones
"""

from __future__ import annotations

from typing import Callable, TypeVar

from speechunits.errors import UnknownNameError

T = TypeVar("T")


class Registry(dict):
    """Maps a name to a class or factory. `kind` names the registry in errors."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self[name] = obj
            return obj

        return decorate

    def get(self, name: str):  # type: ignore[override]
        try:
            return self[name]
        except KeyError:
            known = ", ".join(sorted(self)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None
