"""File formats mvstore understands well enough to split and rebuild byte for byte."""
