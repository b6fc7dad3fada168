"""RealisticHands Live: real-time stereo hand capture (capture, detection, reconstruction, texture, viewer)."""
