"""packrunner shim of st2common.runners."""
