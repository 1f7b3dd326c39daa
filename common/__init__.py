"""Pieces every stage shares: configs, command-line plumbing."""
