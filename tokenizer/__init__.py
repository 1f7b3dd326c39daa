"""VQ-VAE tokenizer: physics objects to one of 8192 codes and back (issue 4; not built yet)."""
