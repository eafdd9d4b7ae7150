"""Tooling for the tutorial: the step manifest, the runner behind `make`, and the docs generator.

Nothing here is imported by the steps; each step is a complete Django project on its own.
"""
