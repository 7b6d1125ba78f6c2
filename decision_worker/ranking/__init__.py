"""What a decision is made of: profiles, features, candidates, popularity, retrieval, rankers."""
