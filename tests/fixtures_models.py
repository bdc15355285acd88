"""Model fixtures (the offline encoder, a tiny random CLIP checkpoint)."""
