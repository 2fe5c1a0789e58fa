//! Programs and the priority arbiter (sans-IO), playlists.

pub mod arbiter;
pub mod playlist;
pub mod priority;
pub mod roots;

pub use priority::Priority;
