//! Programs and the priority arbiter (sans-IO), playlists.

pub mod arbiter;
pub mod playlist;
pub mod roots;

pub use crate::proto::Priority;
