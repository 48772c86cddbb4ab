"""Science on the archive store beyond one dataset: constellations as one dataset (:mod:`.constellation`),
multi-spacecraft gradients and currents (:mod:`.multispacecraft`)."""
