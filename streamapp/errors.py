"""Why a command is rejected: one type per contract error, turned into replies and HTTP
statuses at the edges (``Reply.rejected``, the order views), nowhere else."""

from __future__ import annotations

from typing import Any, ClassVar


class CommandRejected(Exception):
    """A command that cannot be applied; ``error_type`` is the contract's error type."""

    error_type: ClassVar[str] = "CommandRejected"

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.current_version = current_version

    def with_version(self, current_version: int) -> CommandRejected:
        """The same rejection, reporting the stream's current version."""
        if self.current_version is None:
            self.current_version = current_version
        return self

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.current_version is not None:
            error["currentVersion"] = self.current_version
        return error


class ConcurrencyError(CommandRejected):
    """The stream is not at the version the command expected."""

    error_type = "ConcurrencyError"


class ValidationError(CommandRejected):
    """The command's data breaks a business rule (no items, negative price, ...)."""

    error_type = "ValidationError"


class SchemaError(CommandRejected):
    """The record is not a well-formed command envelope."""

    error_type = "SchemaError"


class UnknownCommand(CommandRejected):
    """The commandType is not one this service handles."""

    error_type = "UnknownCommand"


class InvalidTransition(CommandRejected):
    """The command is not allowed in the aggregate's current state."""

    error_type = "InvalidTransition"
