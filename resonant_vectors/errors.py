"""``ResonantVectorsError``: the one base of every mistake this project reports to its user.

Why one base: a command turns each such error into one line ("error: ...") instead of a traceback,
and a notebook can catch them all with one ``except``. Each subclass also keeps the built-in
class it was before (``ValueError``, ``ConnectionError``, ...), so code that caught those still does.
"""


class ResonantVectorsError(Exception):
    """Something the user can mend: the message says what was wrong, what was expected, what to do."""


class ResonantVectorsWarning(ResonantVectorsError, UserWarning):
    """Something legal but odd, worth one line before going on (``warnings.warn``; a command prints
    "warning: ..."): the message says what is odd and what to do. Turned into an error
    (``-W error``), it is caught as any ``ResonantVectorsError``."""


class EmptyMemoryWarning(ResonantVectorsWarning):
    """A memory read (evaluated, watched, flown read-only) holds no engrams: every decision is a guess."""
