"""The project's errors: one base class, so that a caller (and every CLI, which prints them in one
line with exit code 2) can catch them all, and specific classes under it that say which kind of
input was wrong. Every message names the file or field and what is wrong."""


class ColliderFMError(Exception):
    """Base of every error this project raises on purpose for bad input, files or models."""


class UserError(ColliderFMError):
    """A bad command-line argument or value."""


class ConfigError(ColliderFMError, ValueError):
    """A config file or override that does not match its dataclass."""


class EventDataError(ColliderFMError, ValueError):
    """Event data that cannot be read or is invalid (missing branch, NaN, wrong type, corrupt file)."""


class ModelFileError(ColliderFMError, ValueError):
    """A model folder (tokenizer, backbone, classifier) that is missing, corrupt or of another kind."""


class ModelMismatchError(ModelFileError):
    """Two models that cannot be used together, e.g. a backbone and a tokenizer with other codes."""


class CheckpointError(ModelFileError):
    """No usable training checkpoint: every candidate is missing, incomplete or corrupt."""


class TrainingError(ColliderFMError):
    """Training that cannot go on, e.g. a loss that is never finite."""
