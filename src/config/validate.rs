//! Raw TOML → typed `Config`, collecting every error with its position.
