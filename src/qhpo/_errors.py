"""The one exception type for errors a user can cause."""


class QhpoError(Exception):
    """A problem with the user's input or environment.

    The command line prints ``str(error)`` as one sentence and exits with status 2;
    library users catch it like any other exception. The message says what was wrong and
    what to do about it.
    """
