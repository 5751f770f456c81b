"""The error `gankit serve` reports for bad requests and unusable runs."""
from gankit.errors import GankitError


class ServeError(GankitError):
    """A value the server cannot accept (an HTTP 400 with its message) or a run it cannot
    serve (one line from the CLI, exit 2); the message names the problem and the fix."""
