"""The one exception type for bad user input, and how it is reported: one line, exit status 2."""

EXIT_FAILED = 2


class VirnetError(ValueError):
    """Bad user input (a missing file, an unreadable image, an unsafe output path).

    The message is one line that names the offending file or value; the CLI prints it as
    ``error: <message>`` and exits with status 2.
    """


def error_line(error: BaseException | str) -> str:
    """`virnet: error: <message>` on one line."""
    return f"virnet: error: {one_line(error)}"


def one_line(error: BaseException | str) -> str:
    """The message of `error` with its whitespace (newlines included) collapsed."""
    return " ".join(str(error).split()) or type(error).__name__
