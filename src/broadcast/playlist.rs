//! Playlists: owns turning an M3U/M3U8/PLS file or a folder of audio files
//! into an ordered list of [`Entry`], plus seeded shuffling and total
//! duration.
//!
//! Parsing never touches the audio files: a listed file that is missing is
//! kept as an entry and reported when it comes up for playing (DESIGN:
//! "nothing silently skipped", and a playlist loaded before a USB stick is
//! mounted still works later). What the parser refuses is what can never
//! play: stream URLs, Windows drive paths, malformed lines — each error names
//! the playlist file and line so an operator can fix it in a text editor.
//!
//! Input is bounded: playlists over [`MAX_PLAYLIST_BYTES`] or with more than
//! [`MAX_ENTRIES`] entries are refused before they are held in memory.
//!
//! Must not touch: media-root confinement (see `roots`), decoding beyond the
//! duration probe of [`total_duration`], playback order policy.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest playlist file accepted. A hand-made playlist of 100 000 entries
/// with long paths fits comfortably; anything bigger is not a playlist.
pub const MAX_PLAYLIST_BYTES: usize = 8 * 1024 * 1024;

/// Most entries accepted from one playlist or folder.
pub const MAX_ENTRIES: usize = 100_000;

/// File extensions [`scan_dir`] treats as audio, lowercase, without the dot.
pub const AUDIO_EXTENSIONS: [&str; 8] = ["mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "wav"];

/// Why a playlist or folder cannot be turned into entries. Messages name the
/// file (and line) because operators see them as-is in `loa playlist load`.
#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    #[error("cannot read playlist {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is not a playlist (expected .m3u, .m3u8 or .pls)", path.display())]
    NotAPlaylist { path: PathBuf },
    #[error(
        "playlist {} is larger than {} MiB; loa refuses playlists that big",
        path.display(),
        MAX_PLAYLIST_BYTES / (1024 * 1024)
    )]
    TooLarge { path: PathBuf },
    #[error(
        "{} has more than {MAX_ENTRIES} entries; split it into smaller playlists",
        path.display()
    )]
    TooManyEntries { path: PathBuf },
    #[error(
        "playlist {} line {line}: text is not UTF-8; save the playlist as UTF-8 (.m3u8)",
        path.display()
    )]
    NotUtf8 { path: PathBuf, line: usize },
    #[error(
        "playlist {} line {line}: {url} is a stream URL; loa plays files only",
        path.display()
    )]
    StreamUrl {
        path: PathBuf,
        line: usize,
        url: String,
    },
    #[error(
        "playlist {} line {line}: {url} is not a local file (only file:// URLs and paths are supported)",
        path.display()
    )]
    UnsupportedUrl {
        path: PathBuf,
        line: usize,
        url: String,
    },
    #[error(
        "playlist {} line {line}: {entry} is a Windows path; copy the files to this machine and list them relative to the playlist",
        path.display()
    )]
    WindowsPath {
        path: PathBuf,
        line: usize,
        entry: String,
    },
    #[error("playlist {} line {line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot read directory {}: {reason}", dir.display())]
    ReadDir { dir: PathBuf, reason: String },
    #[error(
        "directory {} holds no audio files (looked for {})",
        dir.display(),
        ExtensionList
    )]
    NoAudioFiles { dir: PathBuf },
}

/// Formats [`AUDIO_EXTENSIONS`] as ".mp3 .m4a …" for messages.
struct ExtensionList;

impl fmt::Display for ExtensionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ext) in AUDIO_EXTENSIONS.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, ".{ext}")?;
        }
        Ok(())
    }
}

/// One item of a playlist: a file to play, with what the playlist said
/// about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: PathBuf,
    pub title: Option<String>,
    /// From `#EXTINF` or PLS `LengthN` when the playlist gives a positive
    /// length; `None` means "probe the file" (see [`total_duration`]).
    pub duration: Option<Duration>,
}

impl Entry {
    fn file(path: PathBuf) -> Entry {
        Entry {
            path,
            title: None,
            duration: None,
        }
    }
}

/// Loads a playlist file, choosing the format by extension
/// (case-insensitive): `.m3u`/`.m3u8` → M3U, `.pls` → PLS. Relative entries
/// are resolved against the playlist's own directory.
pub fn load(path: &Path) -> Result<Vec<Entry>, PlaylistError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let is_pls = match ext.as_deref() {
        Some("m3u") | Some("m3u8") => false,
        Some("pls") => true,
        _ => {
            return Err(PlaylistError::NotAPlaylist {
                path: path.to_path_buf(),
            })
        }
    };
    let bytes = read_bounded(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        PlaylistError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
        }
    })?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if is_pls {
        parse_pls(&text, base, path)
    } else {
        parse_m3u(&text, base, path)
    }
}

/// Reads at most `MAX_PLAYLIST_BYTES + 1` bytes, so a huge file, a FIFO or
/// a device named `x.m3u` cannot make the daemon allocate without bound.
fn read_bounded(path: &Path) -> Result<Vec<u8>, PlaylistError> {
    let read_err = |e: io::Error| PlaylistError::Read {
        path: path.to_path_buf(),
        reason: io_reason(&e),
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(PlaylistError::Read {
            path: path.to_path_buf(),
            reason: "it is a directory".to_string(),
        });
    }
    if meta.len() > MAX_PLAYLIST_BYTES as u64 {
        return Err(PlaylistError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLAYLIST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_PLAYLIST_BYTES {
        return Err(PlaylistError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

use crate::proto::text::io_reason;

/// Parses M3U/M3U8 text.
///
/// - Blank lines and `#` lines are ignored, except `#EXTINF:secs,title`,
///   which describes the next entry (`secs` may be fractional; zero or
///   negative means unknown, as `-1` is commonly written for that).
/// - A UTF-8 byte-order mark at the start and CRLF line ends are accepted.
/// - `file://` URLs become paths (percent-decoded; host empty or
///   `localhost`). Any other URL is an error with its line number.
/// - Relative paths are joined to `base`. In relative paths `\` is read as
///   a separator: such playlists come from Windows tools on an operator's
///   PC. Absolute paths are kept as written, because on Unix `\` is a legal
///   file-name character and an absolute Unix path was not written by
///   Windows. Drive (`C:\…`) and UNC (`\\server\…`) paths are errors: they
///   can never resolve on this machine.
///
/// `origin` is only used in error messages.
pub fn parse_m3u(text: &str, base: &Path, origin: &Path) -> Result<Vec<Entry>, PlaylistError> {
    check_size(text, origin)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    // (duration, title) from the last #EXTINF, waiting for its path line.
    let mut pending: Option<(Option<Duration>, Option<String>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(info) = strip_prefix_ignore_case(rest, "EXTINF:") {
                pending = Some(parse_extinf(info, origin, line_no)?);
            }
            continue;
        }
        let path = m3u_entry_path(line, base, origin, line_no)?;
        if entries.len() == MAX_ENTRIES {
            return Err(PlaylistError::TooManyEntries {
                path: origin.to_path_buf(),
            });
        }
        let (duration, title) = pending.take().unwrap_or((None, None));
        entries.push(Entry {
            path,
            title,
            duration,
        });
    }
    Ok(entries)
}

fn check_size(text: &str, origin: &Path) -> Result<(), PlaylistError> {
    if text.len() > MAX_PLAYLIST_BYTES {
        return Err(PlaylistError::TooLarge {
            path: origin.to_path_buf(),
        });
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `#EXTINF:` body: `secs[ attributes],title`. IPTV-style attributes
/// (`tvg-id="…"`) after the seconds are ignored.
fn parse_extinf(
    info: &str,
    origin: &Path,
    line: usize,
) -> Result<(Option<Duration>, Option<String>), PlaylistError> {
    let (head, title) = match info.split_once(',') {
        Some((head, title)) => (head, title.trim()),
        None => (info, ""),
    };
    let secs_text = head.split_whitespace().next().unwrap_or("");
    let secs: f64 = secs_text.parse().map_err(|_| PlaylistError::Malformed {
        path: origin.to_path_buf(),
        line,
        reason: format!("#EXTINF length {secs_text:?} is not a number of seconds"),
    })?;
    let duration = seconds(secs).map_err(|reason| PlaylistError::Malformed {
        path: origin.to_path_buf(),
        line,
        reason,
    })?;
    let title = (!title.is_empty()).then(|| title.to_string());
    Ok((duration, title))
}

/// Playlist lengths: zero or negative means unknown (`-1` by convention,
/// `0` from some writers); absurd values are errors rather than overflow.
fn seconds(secs: f64) -> Result<Option<Duration>, String> {
    if !secs.is_finite() {
        return Err(format!("length {secs} is not a number of seconds"));
    }
    if secs <= 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| format!("length {secs} seconds is too large"))
}

/// Schemes that carry live audio: an operator pasted a radio link.
const STREAM_SCHEMES: [&str; 12] = [
    "http", "https", "rtp", "rtsp", "rtmp", "udp", "mms", "mmsh", "srt", "icy", "tcp", "hls",
];

/// The URL scheme of `entry`, if it has one. Single letters are not schemes
/// (`C:\music` is a drive), so a scheme needs two characters.
fn url_scheme(entry: &str) -> Option<&str> {
    let (scheme, _) = entry.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn m3u_entry_path(
    entry: &str,
    base: &Path,
    origin: &Path,
    line: usize,
) -> Result<PathBuf, PlaylistError> {
    entry_path(entry, base).map_err(|problem| problem.into_error(entry, origin, line))
}

/// What is wrong with one entry, before it is tied to a file and line.
enum EntryProblem {
    Stream,
    Url,
    Windows,
    Malformed(String),
}

impl EntryProblem {
    fn into_error(self, entry: &str, origin: &Path, line: usize) -> PlaylistError {
        let path = origin.to_path_buf();
        match self {
            EntryProblem::Stream => PlaylistError::StreamUrl {
                path,
                line,
                url: entry.to_string(),
            },
            EntryProblem::Url => PlaylistError::UnsupportedUrl {
                path,
                line,
                url: entry.to_string(),
            },
            EntryProblem::Windows => PlaylistError::WindowsPath {
                path,
                line,
                entry: entry.to_string(),
            },
            EntryProblem::Malformed(reason) => PlaylistError::Malformed { path, line, reason },
        }
    }
}

/// Turns one playlist entry (M3U line or PLS `FileN` value) into a path.
fn entry_path(entry: &str, base: &Path) -> Result<PathBuf, EntryProblem> {
    if let Some(scheme) = url_scheme(entry) {
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" {
            return file_url_path(entry);
        }
        if STREAM_SCHEMES.contains(&scheme.as_str()) {
            return Err(EntryProblem::Stream);
        }
        if entry[scheme.len()..].starts_with("://") {
            return Err(EntryProblem::Url);
        }
        // "notes:a.mp3" is a relative file name with a colon, not a URL.
    }
    let bytes = entry.as_bytes();
    let is_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if is_drive || entry.starts_with("\\\\") || entry.starts_with('\\') {
        return Err(EntryProblem::Windows);
    }
    let path = Path::new(entry);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(base.join(entry.replace('\\', "/")))
    }
}

/// `file:///a/b%20c.mp3` → `/a/b c.mp3`; `file://localhost/…` too. A
/// remote host cannot be read here, so it is refused.
fn file_url_path(url: &str) -> Result<PathBuf, EntryProblem> {
    let rest = &url["file:".len()..];
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Err(EntryProblem::Malformed(format!(
            "{url} is not a valid file URL (expected file:///path)"
        )));
    };
    let (host, path) = match after_slashes.find('/') {
        Some(i) => after_slashes.split_at(i),
        None => (after_slashes, ""),
    };
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err(EntryProblem::Malformed(format!(
            "{url} names another computer ({host}); loa plays local files only"
        )));
    }
    if path.is_empty() {
        return Err(EntryProblem::Malformed(format!("{url} names no file")));
    }
    let bytes = percent_decode(path).ok_or_else(|| {
        EntryProblem::Malformed(format!("{url} has a bad %-escape (expected %XX in hex)"))
    })?;
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

/// Decodes `%XX` escapes to bytes (file names need not be UTF-8).
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Parses PLS text: a `[playlist]` header (first non-blank line), then
/// `key=value` lines. `FileN`, `TitleN`, `LengthN` (seconds; `-1` or `0`
/// unknown) describe entry N; entries come out ordered by N, whatever the
/// order of lines. `NumberOfEntries` and `Version` are accepted (the actual
/// `FileN` lines are what count — writers often get the number wrong);
/// unknown keys and `;` comments are ignored. Keys are case-insensitive.
/// File values follow the same rules as M3U entries (see [`parse_m3u`]).
pub fn parse_pls(text: &str, base: &Path, origin: &Path) -> Result<Vec<Entry>, PlaylistError> {
    check_size(text, origin)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let malformed = |line: usize, reason: String| PlaylistError::Malformed {
        path: origin.to_path_buf(),
        line,
        reason,
    };

    #[derive(Default)]
    struct Slot {
        file: Option<(usize, PathBuf)>,
        title: Option<String>,
        duration: Option<Duration>,
    }
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    let mut seen_header = false;

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        if !seen_header {
            if trimmed.eq_ignore_ascii_case("[playlist]") {
                seen_header = true;
                continue;
            }
            return Err(malformed(
                line,
                format!(
                    "expected the [playlist] header, found {trimmed:?}; is this a PLS playlist?"
                ),
            ));
        }
        if trimmed.starts_with('[') {
            return Err(malformed(
                line,
                format!("unexpected section {trimmed}; a PLS file has only [playlist]"),
            ));
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(malformed(
                line,
                format!("expected key=value (like File1=song.mp3), found {trimmed:?}"),
            ));
        };
        let key = key.trim();
        let value = value.trim();
        let lower = key.to_ascii_lowercase();

        if lower == "numberofentries" {
            let count: u64 = value.parse().map_err(|_| {
                malformed(
                    line,
                    format!("NumberOfEntries {value:?} is not a whole number"),
                )
            })?;
            if count > MAX_ENTRIES as u64 {
                return Err(PlaylistError::TooManyEntries {
                    path: origin.to_path_buf(),
                });
            }
            continue;
        }
        if lower == "version" {
            continue;
        }
        let Some((field, number)) = ["file", "title", "length"]
            .into_iter()
            .find_map(|field| Some((field, lower.strip_prefix(field)?)))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue; // unknown key
        };
        let n: u32 = match number.parse() {
            Ok(n) if n >= 1 && n as usize <= MAX_ENTRIES => n,
            _ => {
                return Err(malformed(
                    line,
                    format!("{key}: entry number must be between 1 and {MAX_ENTRIES}"),
                ))
            }
        };
        let slot = slots.entry(n).or_default();
        match field {
            "file" => {
                if let Some((first, _)) = slot.file {
                    return Err(malformed(
                        line,
                        format!("{key} already given on line {first}"),
                    ));
                }
                if value.is_empty() {
                    return Err(malformed(line, format!("{key} is empty")));
                }
                let path = entry_path(value, base)
                    .map_err(|problem| problem.into_error(value, origin, line))?;
                slot.file = Some((line, path));
            }
            "title" => slot.title = (!value.is_empty()).then(|| value.to_string()),
            _ => {
                let secs: i64 = value.parse().map_err(|_| {
                    malformed(
                        line,
                        format!("{key} {value:?} is not a whole number of seconds"),
                    )
                })?;
                slot.duration = seconds(secs as f64).map_err(|reason| malformed(line, reason))?;
            }
        }
    }
    if !seen_header {
        return Err(malformed(
            1,
            "empty PLS playlist: expected the [playlist] header".to_string(),
        ));
    }
    // TitleN/LengthN without FileN describe nothing playable; dropping them
    // loses no audio.
    Ok(slots
        .into_values()
        .filter_map(|slot| {
            let (_, path) = slot.file?;
            Some(Entry {
                path,
                title: slot.title,
                duration: slot.duration,
            })
        })
        .collect())
}

/// Audio files directly in `dir` (not recursive), recognised by extension
/// ([`AUDIO_EXTENSIONS`], case-insensitive; symlinks to files count).
///
/// Sorted by file name in byte order of the name (for UTF-8 names, the byte
/// order of their UTF-8 encoding): stable and locale-independent, so
/// `01 news.mp3` plays before `02 music.mp3` on every machine, though
/// `B.mp3` sorts before `a.mp3` and `10.mp3` before `9.mp3`.
///
/// Hidden files (name starting with `.`) are left out: macOS writes
/// `._song.mp3` companions onto USB sticks, which are not audio.
pub fn scan_dir(dir: &Path) -> Result<Vec<Entry>, PlaylistError> {
    let read_err = |e: io::Error| PlaylistError::ReadDir {
        dir: dir.to_path_buf(),
        reason: io_reason(&e),
    };
    let mut files = Vec::new();
    for item in fs::read_dir(dir).map_err(read_err)? {
        let item = item.map_err(read_err)?;
        let name = item.file_name();
        if name.as_bytes().starts_with(b".") || !has_audio_extension(Path::new(&name)) {
            continue;
        }
        let path = item.path();
        // Follows symlinks; a dangling link or a folder named x.mp3 is not
        // a file to play.
        if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if files.len() == MAX_ENTRIES {
            return Err(PlaylistError::TooManyEntries {
                path: dir.to_path_buf(),
            });
        }
        files.push((name, path));
    }
    if files.is_empty() {
        return Err(PlaylistError::NoAudioFiles {
            dir: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(files
        .into_iter()
        .map(|(_, path)| Entry::file(path))
        .collect())
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Fisher–Yates shuffle driven by `seed`: the same seed gives the same
/// order on every machine and every loa version, so tests and
/// `loa status` can show a reproducible order. The generator is SplitMix64
/// written out here rather than `rand::SmallRng`, whose algorithm rand
/// documents as free to change between versions and platforms.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014; the seeder of xoshiro).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0), without modulo bias (Lemire's
    /// multiply-and-reject).
    fn below(&mut self, bound: u64) -> u64 {
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

/// Sum of the entries' durations, and how many entries have no known
/// duration. A duration from the playlist is trusted; otherwise the file is
/// opened and its container asked (a file that does not open, or whose
/// container does not say, counts as unknown and adds nothing).
pub fn total_duration(entries: &[Entry]) -> (Duration, usize) {
    let mut total = Duration::ZERO;
    let mut unknown = 0;
    for entry in entries {
        let duration = entry.duration.or_else(|| {
            crate::media::Source::open(&entry.path, crate::config::Channels::Mono)
                .ok()
                .and_then(|source| source.duration())
        });
        match duration {
            Some(d) => total = total.saturating_add(d),
            None => unknown += 1,
        }
    }
    (total, unknown)
}

#[cfg(test)]
mod tests;
