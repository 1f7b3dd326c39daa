"""Classification and anomaly heads trained by head swap (issue 6; not built yet)."""
