"""`make bench`: the benchmark."""
