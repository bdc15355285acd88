"""Learning what a user means: scorers, taught concepts, tags, the shared matrix, the learner."""
