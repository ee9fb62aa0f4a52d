"""``ResonantVectorsError``: the one base of every mistake this project reports to its user.

Why one base: a command turns each such error into one line ("error: ...") instead of a traceback,
and a notebook can catch them all with one ``except``. Each subclass also keeps the built-in
class it was before (``ValueError``, ``ConnectionError``, ...), so code that caught those still does.
"""


class ResonantVectorsError(Exception):
    """Something the user can mend: the message says what was wrong, what was expected, what to do."""
