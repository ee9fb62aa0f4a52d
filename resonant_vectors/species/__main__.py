"""``python -m resonant_vectors.species work``: one worker of a species (started by ``python main.py
--workers N``, its task as JSON on stdin; not by hand)."""
import sys

from resonant_vectors.species.training import work

if sys.argv[1:] != ["work"]:
    sys.exit("usage: python -m resonant_vectors.species work  (started by `python main.py --workers N`, not by hand)")
sys.exit(work())
