"""Every error Quipu raises on purpose, each carrying the sentence an operator will read.

    QuipuError
     +-- InvalidInput        a value is not allowed (names the field and what is allowed)
     +-- NotFound            the object named does not exist
     +-- AlreadyExists       a name is taken
     +-- InUse               the object is still used by others (names them)
     +-- Conflict            the object is not in a state that allows the action
     |    +-- IllegalTransition   a state machine refused an action
     +-- Unauthenticated     no valid token or API key
     +-- Forbidden           authenticated, but not allowed
          +-- IpBindingViolation  a scanner called from an address it is not bound to

The API maps each class to one HTTP status in one place (``quipu.api.errors``); the CLI
prints ``str(error)`` and exits 1.
"""

from __future__ import annotations


class QuipuError(Exception):
    """Base of every deliberate error; ``str()`` is the operator's sentence."""

    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(QuipuError):
    """A value is not allowed; ``field`` names it."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class NotFound(QuipuError):
    code = "NOT_FOUND"


class AlreadyExists(QuipuError):
    """A unique value is taken; ``field`` names it."""

    code = "ALREADY_EXISTS"

    def __init__(self, message: str, *, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class InUse(QuipuError):
    code = "IN_USE"


class Conflict(QuipuError):
    code = "CONFLICT"


class IllegalTransition(Conflict):
    """A state machine refused an action; the state is left as it was."""

    code = "ILLEGAL_TRANSITION"

    def __init__(self, message: str, *, state: str, action: str) -> None:
        super().__init__(message)
        self.state = state
        self.action = action


class Unauthenticated(QuipuError):
    code = "UNAUTHENTICATED"


class Forbidden(QuipuError):
    code = "FORBIDDEN"


class IpBindingViolation(Forbidden):
    code = "IP_BINDING_VIOLATION"
