"""The twisted.web side: the Resource tree, the client-key guard, limits and the relay."""
