"""FreeScore freestyle poomsae: the upstream freestyle service (port 3082) inside freescore (docs/freestyle.md)."""
