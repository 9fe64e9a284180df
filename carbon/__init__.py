"""Carbon accounting: the emission-factor library and the accounting methods (pure; no I/O
beyond reading the shipped factor files)."""
