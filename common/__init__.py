"""What every stage shares and nothing stage-specific: configs (and where the built-in ones are),
command-line plumbing, errors, runtime (device, DDP, autocast), training schedule and checkpoints,
atomic output, model folders and provenance. Imports nothing from the stages."""
