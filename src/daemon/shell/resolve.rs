//! Resolution jobs: what a request or schedule names, turned into files on
//! the blocking pool (so a slow disk delays only the program that waits
//! for it, never another's decision): media-root confinement of paths from
//! clients, config-relative paths, M3U/PLS files and folders, espeak-ng,
//! loa's chime.
//!
//! Must not touch: decisions (what to play, when): the core asked for this.

use std::path::{Path, PathBuf};

use crate::broadcast::playlist;
use crate::broadcast::roots::MediaRoots;
use crate::config::{Playlist, PlaylistSource};
use crate::daemon::core::{ChimeSource, ItemSource, Job, Resolved};
use crate::proto::playlist::{PlaylistInfo, PlaylistOrigin};
use crate::store::PlaylistRecord;

/// Runs one job; `Err` is the refusal in plain words.
pub fn run(job: Job) -> Result<Resolved, String> {
    match job {
        Job::Items { items, chime, media_roots, shuffle_seed } => {
            let (items, rejected) = resolve_items(items, &media_roots, shuffle_seed)?;
            let chime = chime.map(|c| chime_path(c, &media_roots));
            Ok(Resolved::Items { items, chime, rejected })
        }
        Job::PlaylistLoad { file, media_roots } => playlist_load(&file, &media_roots),
        Job::PlaylistListing { config, runtime, media_roots } => Ok(Resolved::Listing(listing(&config, &runtime, &media_roots))),
        Job::SocketPath { path, media_roots } => {
            MediaRoots::new(&media_roots).resolve(Path::new(&path)).map(Resolved::Path).map_err(|e| e.to_string())
        }
    }
}

/// A media path from the config file: trusted, so absolute paths are taken
/// as they are; relative ones are looked up in the media roots.
fn config_media_path(path: &Path, roots: &[PathBuf]) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    roots
        .iter()
        .map(|root| root.join(path))
        .find(|p| p.exists())
        .or_else(|| roots.first().map(|r| r.join(path)))
        .unwrap_or_else(|| path.to_path_buf())
}

type Rejected = Vec<(PathBuf, String)>;

fn resolve_items(source: ItemSource, media_roots: &[PathBuf], seed: u64) -> Result<(Vec<PathBuf>, Rejected), String> {
    let mut rejected = Vec::new();
    let items = match source {
        ItemSource::Socket(files) => {
            let roots = MediaRoots::new(media_roots);
            files.iter().map(|f| roots.resolve(Path::new(f)).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>()?
        }
        ItemSource::Config(path) => vec![config_media_path(&path, media_roots)],
        ItemSource::Playlist(p) => {
            let mut items = config_playlist(&p, media_roots)?;
            if p.shuffle {
                playlist::shuffle(&mut items, seed);
            }
            items
        }
        ItemSource::Runtime(items) => {
            // Loaded through the socket: every item must still be inside
            // the media roots (a symlink may have changed since).
            let roots = MediaRoots::new(media_roots);
            let mut ok = Vec::new();
            for item in items {
                match roots.resolve(&item) {
                    Ok(path) => ok.push(path),
                    Err(e) => rejected.push((item, e.to_string())),
                }
            }
            ok
        }
        ItemSource::Speech { tts, voice, text, dir } => {
            let wav = crate::media::tts::synthesize(&tts, &voice, &text, &dir).map_err(|e| format!("cannot synthesise speech: {e}"))?;
            vec![wav]
        }
        ItemSource::Live => vec![crate::live::live_item()],
    };
    Ok((items, rejected))
}

fn config_playlist(p: &Playlist, media_roots: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    Ok(match &p.source {
        PlaylistSource::Items(items) => items.iter().map(|i| config_media_path(i, media_roots)).collect(),
        PlaylistSource::File(file) => {
            let file = config_media_path(file, media_roots);
            playlist::load(&file).map_err(|e| e.to_string())?.into_iter().map(|e| e.path).collect()
        }
        PlaylistSource::Dir(dir) => {
            let dir = config_media_path(dir, media_roots);
            playlist::scan_dir(&dir).map_err(|e| e.to_string())?.into_iter().map(|e| e.path).collect()
        }
    })
}

/// The chime file. loa's own is written to state_dir when first needed
/// (and again if removed); if that fails the item fails at play time like a
/// missing file, with the reason in history, and the program goes on.
fn chime_path(chime: ChimeSource, media_roots: &[PathBuf]) -> PathBuf {
    match chime {
        ChimeSource::File(path) => config_media_path(&path, media_roots),
        ChimeSource::BuiltIn { state_dir } => {
            let path = state_dir.join("chime.wav");
            if !path.exists() {
                if let Err(e) = crate::media::chime::write_builtin(&state_dir) {
                    tracing::error!("cannot write loa's chime to {}: {e}", path.display());
                }
            }
            path
        }
    }
}

/// `playlist.load`: the file and every item must be inside the media
/// roots; items missing now are kept (they may appear) and listed.
fn playlist_load(file: &str, media_roots: &[PathBuf]) -> Result<Resolved, String> {
    let roots = MediaRoots::new(media_roots);
    let file = roots.resolve(Path::new(file)).map_err(|e| e.to_string())?;
    let entries = playlist::load(&file).map_err(|e| e.to_string())?;
    let (mut items, mut missing, mut outside) = (Vec::new(), Vec::new(), Vec::new());
    for entry in entries {
        match roots.resolve(&entry.path) {
            Ok(path) => items.push(path),
            Err(e) if entry.path.exists() => outside.push(e.to_string()),
            Err(_) => {
                missing.push(entry.path.display().to_string());
                items.push(entry.path);
            }
        }
    }
    if !outside.is_empty() {
        return Err(format!("playlist {} refused: {}", file.display(), outside.join("; ")));
    }
    if items.is_empty() {
        return Err(format!("playlist {} has no items", file.display()));
    }
    Ok(Resolved::Playlist { file, items, missing })
}

/// Every playlist with its items resolved as they would play (durations
/// from opening every file), `error` when its file or folder cannot be read.
fn listing(config: &[Playlist], runtime: &[PlaylistRecord], media_roots: &[PathBuf]) -> Vec<PlaylistInfo> {
    let mut out = Vec::new();
    for p in config {
        let (source, items, error) = match &p.source {
            PlaylistSource::Items(items) => ("items".to_string(), items.iter().map(|i| config_media_path(i, media_roots)).collect(), None),
            PlaylistSource::File(f) | PlaylistSource::Dir(f) => {
                let path = config_media_path(f, media_roots);
                match config_playlist(p, media_roots) {
                    Ok(items) => (path.display().to_string(), items, None),
                    Err(e) => (path.display().to_string(), Vec::new(), Some(e)),
                }
            }
        };
        out.push(info(p.name.clone(), PlaylistOrigin::Config, source, &items, p.shuffle, p.looped, error));
    }
    for p in runtime {
        out.push(info(p.name.clone(), PlaylistOrigin::Runtime, p.source.clone(), &p.items, false, false, None));
    }
    out
}

fn info(
    name: String,
    origin: PlaylistOrigin,
    source: String,
    items: &[PathBuf],
    shuffle: bool,
    looped: bool,
    error: Option<String>,
) -> PlaylistInfo {
    let entries: Vec<playlist::Entry> = items.iter().map(|p| playlist::Entry { path: p.clone(), title: None, duration: None }).collect();
    let (total, unknown) = playlist::total_duration(&entries);
    PlaylistInfo {
        name,
        origin,
        source,
        items: items.len(),
        duration_secs: total.as_secs_f64(),
        unknown_durations: unknown,
        shuffle,
        looped,
        error,
    }
}
