//! What the running kernel offers and how its structures are laid out.
