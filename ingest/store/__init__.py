"""Per-collection index store: SQLite docstore, FAISS vectors, BM25, versioned atomic publishing."""
