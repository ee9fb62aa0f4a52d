"""The agent: the brain that resonates (``brain``, ``resonators``), how it acts (``policy``), and what
its steps are credited with (``credit``, ``revaluation``). No database here."""
