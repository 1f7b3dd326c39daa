"""Causal transformer backbone over token sequences (issue 5; not built yet)."""
