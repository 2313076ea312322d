"""Neural language models and recurrent layers, written from scratch to match torch.nn."""
