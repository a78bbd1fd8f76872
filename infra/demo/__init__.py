"""`make demo`: the whole flow through the real handlers, with its sample documents."""
