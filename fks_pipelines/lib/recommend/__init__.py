"""Making the daily recommendation: its schema (the contract every generator answers), the rules engine that
answers without a model, and generate(), which asks the LLM when one is configured and falls back to the rules."""
