"""The one exception type of gankit.data, kept in a module with no imports so that the CLI can
catch it without loading NumPy or PyTorch."""


from gankit.errors import GankitError


class DataError(GankitError):
    """A dataset file or folder is missing, corrupt, or does not match what was expected.

    The message names the file or folder and says what to do about it.
    """
