//! SQLite persistence: history, runtime schedules and playlists, last fire
//! per schedule.
