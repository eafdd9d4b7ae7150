"""The docs site: the mkdocs hook, the captured outputs, the pages measured in a browser."""
