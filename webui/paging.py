"""Server-side pagination shared by the list pages."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    """One page of a list; the number is clamped so any ``?page=`` value is harmless."""

    number: int
    count: int
    total: int
    size: int = PAGE_SIZE

    @classmethod
    def from_request(cls, total: int, size: int = PAGE_SIZE) -> Page:
        count = max((total + size - 1) // size, 1)
        requested = request.args.get("page", 1, type=int) or 1
        return cls(number=min(max(requested, 1), count), count=count, total=total, size=size)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size
