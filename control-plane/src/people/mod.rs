//! People: who may call what (roles, groups), authenticated by certificate or token.
