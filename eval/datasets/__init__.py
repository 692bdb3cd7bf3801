"""Scripts that build evaluation sets from ../shared/data at run time (the data is never committed)."""
