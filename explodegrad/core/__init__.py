"""Core: configuration, networks, initialization, traces, Jacobians, argument checks, devices,
data, scales and seeds. Nothing here knows about measures, training or the course."""
