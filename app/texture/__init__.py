"""Personal hand texture: projection of the stereo images onto the hand model's UV layout, the thesis 4.2.5
update, hole filling, persistence and export (docs/TEXTURE.md)."""
