"""One small exception tree, so callers catch mgctag failures without catching bugs."""


class MgctagError(Exception):
    """Base of every error mgctag raises on purpose; its message is one line for a user."""


class DecodeError(MgctagError):
    """The file could not be read or decoded as audio."""


class TagError(MgctagError):
    """Tags could not be read or written."""


class WeightsError(MgctagError):
    """A weights file is missing, unreadable or does not match its architecture."""


class DataError(MgctagError):
    """Training or evaluation data is missing, empty or inconsistent."""


class LockError(MgctagError):
    """Another run holds the state database's lock."""


class TrainError(MgctagError):
    """Training could not produce a model (the loss stopped being a number)."""
