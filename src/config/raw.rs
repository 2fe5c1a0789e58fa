//! The TOML schema as written by people (serde), with spans kept for errors.
