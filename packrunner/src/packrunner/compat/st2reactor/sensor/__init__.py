"""packrunner shim of st2reactor.sensor."""
