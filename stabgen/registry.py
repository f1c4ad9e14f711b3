"""A tiny name → entry registry shared by models, objectives, regularizers, datasets and reproductions.

Registries (not if-chains) are the extension seam: adding a regularizer is one class plus one
`@REGULARIZERS.register("name")` line, and the search space picks it up by name. A registry with an
entry-point `group` also takes entries from installed distributions, without a fork: a package that
declares, in its pyproject.toml,

    [project.entry-points."stabgen.regularizers"]
    my_penalty = "my_package.regs:MyPenalty"

gets `MyPenalty` registered as `my_penalty` the first time the registry is read (entry points are
loaded lazily, so importing stabgen never imports third-party code).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

from stabgen.errors import StabgenError

T = TypeVar("T")


class Registry(Generic[T]):
    """`check(name, entry)` (optional) raises ValueError saying what is wrong with an entry; it runs when
    the entry is registered, built-in or plugin, so a malformed entry fails where it is declared rather
    than deep inside a training step. (The behavioural contracts — placement, population member = solo,
    determinism — are stabgen.testing's, run by the entry's own tests.)"""

    def __init__(self, kind: str, group: str | None = None,
                 check: Callable[[str, T], None] | None = None) -> None:
        self.kind, self.group, self.check = kind, group, check
        self._items: dict[str, T] = {}
        self._loaded: set[str] = set()  # entry-point names already loaded (or refused)

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if self.check is not None:
                self.check(name, obj)
            self._items[name] = obj
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove an entry (what a test or a notebook does after registering a temporary one)."""
        self._items.pop(name, None)

    def _plugins(self) -> dict[str, T]:
        """Load the entry points of installed distributions not loaded yet. A plugin named like an entry
        already registered (a built-in) is refused in one line naming both: a silent winner either way
        would run code the user did not choose."""
        if self.group is None:
            return self._items
        for ep in entry_points(group=self.group):
            if ep.name in self._loaded:
                continue
            if ep.name in self._items:
                mine = self._items[ep.name]
                where = f"{getattr(mine, '__module__', '?')}.{getattr(mine, '__qualname__', type(mine).__name__)}"
                if where != ep.value.replace(":", "."):
                    dist = ep.dist.name if ep.dist is not None else "an installed distribution"
                    raise StabgenError(f"{self.kind} plugin {ep.name!r} ({ep.value}, from {dist}) shadows the "
                                       f"built-in {self.kind} {ep.name!r} ({where}); rename it in the plugin's "
                                       f"entry point ({self.group})")
                self._loaded.add(ep.name)
                continue
            self._loaded.add(ep.name)
            try:
                entry = ep.load()
                if self.check is not None:
                    self.check(ep.name, entry)
            except Exception as e:  # a broken plugin must not break the built-in entries
                raise StabgenError(f"{self.kind} plugin {ep.name!r} ({ep.value}, entry point group "
                                   f"{self.group}) failed to load: {e}") from None
            self._items[ep.name] = entry
        return self._items

    def get(self, name: str) -> T:
        items = self._items if name in self._items else self._plugins()
        try:
            return items[name]
        except KeyError:
            known = ", ".join(sorted(items))
            raise StabgenError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return list(self._plugins())

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._plugins().items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._plugins()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._plugins())
