"""The error hierarchy of ews: one root, specific leaves, messages that say what to do."""

from __future__ import annotations


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
