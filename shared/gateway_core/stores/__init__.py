"""Storage adapters: the vector store and the graph store, each behind a small interface."""
