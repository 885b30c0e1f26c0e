"""cliproxy: serve OpenAI, Claude and Gemini APIs (and Amp) from your own accounts."""

__version__ = "0.1.0"
