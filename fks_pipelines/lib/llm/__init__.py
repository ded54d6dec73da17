"""The daily recommendation's generators: an LLM behind an OpenAI-compatible API (vLLM), and the rules engine."""
