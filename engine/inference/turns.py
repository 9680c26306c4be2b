"""Turns at a resource that serves one request at a time (the chat workers), first come first served, with each
waiting request's place in the line: the page says "2 requests ahead" and the API reports the same number.

Gradio's own queue also orders requests, but it does not tell a handler where it stands, and the page's chat and
the API's /chat wait at the same workers; so they take their turns here (written by hand: a FIFO of tickets
under one condition variable). Import-light: threads only.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TurnLine:
    """A first-come-first-served line: the head of the line holds the turn, the others wait."""

    def __init__(self):
        self._changed = threading.Condition()
        self._line: list[int] = []
        self._numbers = itertools.count()

    def join(self) -> int:
        """A ticket at the end of the line."""
        with self._changed:
            ticket = next(self._numbers)
            self._line.append(ticket)
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many requests are before `ticket` (0: its turn)."""
        with self._changed:
            return self._line.index(ticket)

    def wait(self, ticket: int, timeout: float | None = None) -> int:
        """Wait until `ticket`'s place changes, its turn comes or `timeout` passes; returns how many are ahead."""
        with self._changed:
            place = self._line.index(ticket)
            if place:
                self._changed.wait_for(lambda: self._line.index(ticket) != place, timeout)
            return self._line.index(ticket)

    def leave(self, ticket: int) -> None:
        """Give up the turn or the place in the line (served, failed or abandoned by its client)."""
        with self._changed:
            if ticket in self._line:
                self._line.remove(ticket)
                self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._line)

    @contextmanager
    def turn(self, on_wait=None, poll_s: float = 0.5) -> Iterator[None]:
        """Hold the turn for the body; while waiting, `on_wait(ahead)` is called each time the place changes."""
        ticket = self.join()
        try:
            ahead = self.ahead(ticket)
            while ahead:
                if on_wait:
                    on_wait(ahead)
                ahead = self.wait(ticket, poll_s)
            yield
        finally:
            self.leave(ticket)

    def waiting(self, ticket: int, poll_s: float = 0.5) -> Iterator[int]:
        """For a generator handler: yields the number ahead each time it changes, and returns when it is
        `ticket`'s turn (the caller leaves the line in a `finally`, so a closed generator gives its place up)."""
        ahead, told = self.ahead(ticket), None
        while ahead:
            if ahead != told:
                told = ahead
                yield ahead
            ahead = self.wait(ticket, poll_s)
