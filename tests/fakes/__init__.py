"""Stand-ins for the outside programs Pixel Bot talks to, speaking their real protocols."""
