"""Pure rules of Pixel Bot: durations, XP curves, earning maths. Nothing here does I/O."""
