"""Fakes at the I/O edge: stand-ins for the services thothbot talks to over the network."""
