"""A deterministic discrete-event simulator of an ML GPU platform on Kubernetes."""
