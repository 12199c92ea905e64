"""Outside programs the workers drive: OBS (obs.py), speech (speech.py), audio players."""
