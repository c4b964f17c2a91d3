"""packrunner shim of the st2common package (only used when real st2 is absent)."""
