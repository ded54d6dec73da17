"""Talking to a language model: the vLLM OpenAI-compatible client (and the in-process engine) and the prompt."""
