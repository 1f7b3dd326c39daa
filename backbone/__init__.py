"""Causal transformer backbone over token sequences: next- and masked-token pretraining, sampling."""
