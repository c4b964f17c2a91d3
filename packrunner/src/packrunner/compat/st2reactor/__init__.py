"""packrunner shim of the st2reactor package (only used when real st2 is absent)."""
