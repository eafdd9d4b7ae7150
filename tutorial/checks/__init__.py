"""Running a step's pytest checks and reading each result as a JSON line (the pytest plugin)."""
