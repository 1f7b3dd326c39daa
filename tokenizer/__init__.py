"""VQ-VAE tokenizer: every physics object to one of 8192 codes and back (`tokenizer.tokenizer.Tokenizer`),
trained with `python -m tokenizer.train`; `python -m tokenizer.tokenize` writes token stores. See docs/tokenizer.md."""
