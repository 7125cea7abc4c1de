"""Errors the package raises for bad input: each names the file or value and the problem."""


class SpectranError(Exception):
    """Base class: the command line prints these as one line, without a traceback."""


class DataError(SpectranError):
    """A data directory, dataset or data file is missing or malformed."""


class TextError(SpectranError):
    """Item text or its embedding matrix is missing, malformed or of the wrong shape."""


class ConfigError(SpectranError, ValueError):
    """A setting outside its allowed range."""
