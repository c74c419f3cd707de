"""The error hierarchy of ews: one root, specific leaves, messages that say what to do."""

from __future__ import annotations

import re

# ``ews``'s exit status: 0 success; 1 finished, some inputs rejected or degraded; 2 refused; 3 internal error.
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
# A phone number in any written form, masked in the one line an internal error prints (personal data).
_PHONE_LIKE = re.compile(r"(?<![\w.])(\+?62|0)([\s\-.()]*\d){8,13}(?![\w.])")


def mask_phone_like(text: str) -> str:
    """``text`` with anything that looks like a phone number replaced by ``[number]`` (for error lines)."""
    return _PHONE_LIKE.sub("[number]", text)


class EwsError(Exception):
    """Root of every error ews raises on purpose."""


class ConfigError(EwsError, ValueError):
    """A region file or an environment variable is wrong; the message names the file and key."""


class DataValidationError(EwsError, ValueError):
    """Input data (a CAP file, a boundary file, a CSV) is malformed; the message names the source."""


class BoundaryError(DataValidationError):
    """A boundary file cannot be used: missing field, unreadable, or unrepairable geometry."""


class CapError(DataValidationError):
    """A CAP alert or RSS index is malformed or unsafe."""


class FetchError(EwsError):
    """A source could not be fetched after all retries (transient: the scheduler may retry).

    ``status`` is the HTTP status of the last answer when the server gave one (e.g. 404: not published yet).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TemplateError(EwsError):
    """An alert template is missing, does not render, or cannot be made to fit its channel."""


class StoreError(EwsError):
    """The database cannot be opened or refused an operation; the message names it (never its password)."""


class RasterError(DataValidationError):
    """A rainfall raster cannot be used: unreadable, wrong units or CRS, all missing, or off the region."""


class StaleSourceError(EwsError):
    """A source is older than the configured maximum age: the run must report itself degraded."""


class ForecastError(DataValidationError):
    """A BMKG forecast (adm4 JSON or DigitalForecast XML) is malformed; the message names file and field."""


class QuakeError(DataValidationError):
    """A BMKG earthquake feed (autogempa, gempaterkini, gempadirasakan) is malformed."""
