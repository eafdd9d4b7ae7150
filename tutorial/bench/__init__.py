"""`make bench` and `make bench-watch`: the steps measured under load, and the learner's loop timed."""
