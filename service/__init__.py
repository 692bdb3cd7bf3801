"""ragserve: self-hosted RAG knowledge-QA service with its own vLLM model serving."""

__version__ = "0.1.0"
