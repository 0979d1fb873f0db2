"""The one exception type for bad user input."""


class VirnetError(ValueError):
    """Bad user input (a missing file, an unreadable image, an unsafe output path).

    The message is one line that names the offending file or value; the CLI prints it as
    ``error: <message>`` and exits with status 2.
    """
