"""sprocket.game: the pygame layer (fill in)."""
