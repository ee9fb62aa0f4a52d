"""The loop: a population of landers flying trials (``population``), what listens (``callbacks``),
the ``Trainer``, evaluation, watching and interrupts."""
