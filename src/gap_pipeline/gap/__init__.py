"""The method: gradient ascent on one text, best-step selection, and the post-training run that combines them."""
