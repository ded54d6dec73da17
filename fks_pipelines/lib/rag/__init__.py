"""The knowledge layer's pure code: documents built from the data, token-aware chunks, the embedding model."""
