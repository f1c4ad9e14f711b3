"""One exception type for every user-facing failure.

The CLI turns a StabgenError into one line on stderr and exit code 2; anything else is a bug and
keeps its traceback. Messages say what is wrong *and* what to do about it.
"""


class StabgenError(Exception):
    """A problem with the user's input or environment (bad spec, missing data, bad storage URL)."""
