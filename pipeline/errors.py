"""The one error type that means "the user asked for something that cannot be done"."""

from __future__ import annotations

import errno
from typing import Any

#: What a full disk (or quota, or file size limit) raises.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class ConfigError(ValueError):
    """Bad input: names the key, the value given and what would be accepted.

    The app prints ``str(err)`` as one line and exits with status 2.
    """

    def __init__(self, key: str, value: Any, accepted: str, why: str = "") -> None:
        self.key, self.value, self.accepted, self.why = key, value, accepted, why
        reason = f" ({why})" if why else ""
        super().__init__(f"{key}={value!s} is not accepted{reason}; accepted: {accepted}")

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole: a run writer hands it to the run's process
        return (type(self), (self.key, self.value, self.accepted, self.why))


class Refused(ConfigError):
    """A combination that cannot work, known from the config alone (before any data is read).

    A single run exits 2; a sweep leaves such a job out, says so before any run starts, and
    does not count it as a failure."""
