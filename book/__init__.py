"""The book: the executed notebooks, the README and the API reference as one static website."""
