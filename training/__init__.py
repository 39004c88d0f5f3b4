"""Training the ``tiny`` presets on synthetic VIS videos (CPU), so demos and accuracy mean something."""
