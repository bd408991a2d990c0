"""Mix-ratio sweeps: one run trains several mixes and keeps the one that learns the domain
without forgetting (see docs/pipeline.md, "Sweeps"). Pure code: the config of a sweep and its
arms (:mod:`mixtune.sweeps.config`) and what each arm costs (:mod:`mixtune.sweeps.cost`)."""
