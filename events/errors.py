"""Errors raised for unreadable or invalid event data; each message names the file and what is wrong."""


class EventDataError(ValueError):
    """Event data that cannot be read or is invalid (missing branch, NaN, wrong type, corrupt file)."""
