"""`NameTable`: small integers for the tenant and partition names the cache's entry table refers to."""

from __future__ import annotations

from array import array

__all__ = ["NameTable"]


class NameTable:
    """Small integers for the tenant and partition strings the entry table refers to, freed with their
    last entry (one dict slot, one list slot and a counter per name: in a chat every conversation is a
    partition, so this is per entry)."""

    def __init__(self) -> None:
        self.clear()

    def acquire(self, name: str) -> int:
        number = self._ids.get(name)
        if number is None:
            if self._free:
                number = self._free.pop()
                self._names[number] = name
            else:
                number = len(self._names)
                self._names.append(name)
                self._refs.append(0)
            self._ids[name] = number
        self._refs[number] += 1
        return number

    def find(self, name: str) -> int | None:
        return self._ids.get(name)

    def name(self, number: int) -> str:
        name = self._names[number]
        assert name is not None, "a released name"
        return name

    def release(self, number: int) -> None:
        self._refs[number] -= 1
        if self._refs[number] == 0:
            del self._ids[self.name(number)]
            self._names[number] = None
            self._free.append(number)

    def clear(self) -> None:
        self._ids: dict[str, int] = {}
        self._names: list[str | None] = []
        self._refs = array("I")
        self._free: list[int] = []
