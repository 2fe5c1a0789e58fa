//! Programs and the priority arbiter (sans-IO), playlists.

pub mod priority;

pub use priority::Priority;
