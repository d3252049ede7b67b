"""Use cases: each ties the domain rules to the store and the files, and owns its transaction."""
