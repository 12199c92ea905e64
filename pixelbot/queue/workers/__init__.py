"""Workers: one per kind of queue item (tts, wheel, effect, ai)."""
