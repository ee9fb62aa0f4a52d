"""The command line: ``python main.py`` and ``python gym/lander.py``."""
