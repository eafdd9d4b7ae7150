"""`make test`: every step's suite, each step replayed from the one before, the long checks, the docs."""
