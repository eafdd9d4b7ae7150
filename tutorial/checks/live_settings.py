"""The settings of the servers and commands that the checks start: the step's own, and one change.

The checks make users and log them in through the step's real login page, over and over. Django's
default password hasher (PBKDF2, a million rounds) spends a third of a second of CPU on each
password, on purpose; for tests, Django's docs advise a fast one, as the in-process checks use
(tests/conftest.py). Nothing else differs from `mysite.settings`, which this reads from the
step's folder, the server's current directory.
"""

from mysite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
