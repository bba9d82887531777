"""Wire contracts of Wegweiser: versioned, frozen event models in a CloudEvents 1.0 envelope.

Other parties depend on these; domain objects live in `services/`, never here.
"""
