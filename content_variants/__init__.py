"""Publishing: content folder → sandboxed render → origin → pre-warm → manifest."""
