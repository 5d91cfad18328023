"""The detection engine: rules in, redacted values and findings out. Pure: no I/O at match time."""
