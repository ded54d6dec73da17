"""Talking to a language model: the vLLM OpenAI-compatible client (and the in-process engine). The prompt is the
recommendation's (lib/recommend/prompt.py): this package knows nothing of what is asked."""
