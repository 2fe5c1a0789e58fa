//! Media-path confinement: owns deciding whether a path that arrived over
//! the control socket (or from a schedule or playlist) names a file inside
//! the configured media folders (`[daemon] media_roots`), and turning it
//! into the canonical path to open.
//!
//! The check is on canonical paths (symlinks resolved), so a symlink inside
//! a media folder that points outside it is refused, while one that stays
//! inside is fine. The canonical path is returned so the caller opens what
//! was checked; a component replaced by a symlink between this check and
//! the open is not caught (that would need `openat2(RESOLVE_BENEATH)`), but
//! whoever can do that already writes to the media folder.
//!
//! Must not touch: reading or decoding the file, playlist parsing.

use std::fmt;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Component, Path, PathBuf};

/// Why a requested media path is refused. Messages name the folders as the
/// operator configured them, so they can be found in `loa.toml`.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("no media folders are configured ([daemon] media_roots is empty)")]
    NoRoots,
    #[error(
        "{} is outside the media folders ({})",
        path.display(),
        FolderList(roots)
    )]
    Outside { path: PathBuf, roots: Vec<PathBuf> },
    #[error(
        "{} goes up a folder with '..'; give a path inside the media folders ({})",
        path.display(),
        FolderList(roots)
    )]
    ParentComponent { path: PathBuf, roots: Vec<PathBuf> },
    #[error(
        "{} does not exist in any media folder ({})",
        path.display(),
        FolderList(roots)
    )]
    NotFound { path: PathBuf, roots: Vec<PathBuf> },
    #[error("{} is not a file", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
}

/// "assets, /srv/loa/media" for messages.
struct FolderList<'a>(&'a [PathBuf]);

impl fmt::Display for FolderList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, root) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", root.display())?;
        }
        Ok(())
    }
}

/// The configured media folders, canonicalised once at construction (and
/// again on `config.reload`, by building a new one).
#[derive(Debug, Clone)]
pub struct MediaRoots {
    /// Canonical form of each root that existed at construction; a missing
    /// root is kept as configured, in order, and never matches.
    roots: Vec<PathBuf>,
    present: Vec<bool>,
    /// As written in the config, for messages.
    configured: Vec<PathBuf>,
}

impl MediaRoots {
    /// Roots that do not exist (or are not folders) are kept but logged
    /// (`tracing::warn`) and never match: a USB stick that is not mounted
    /// must not make the daemon refuse to start.
    pub fn new(roots: &[PathBuf]) -> MediaRoots {
        let mut canonical = Vec::with_capacity(roots.len());
        let mut present = Vec::with_capacity(roots.len());
        for root in roots {
            match fs::canonicalize(root) {
                Ok(c) if c.is_dir() => {
                    canonical.push(c);
                    present.push(true);
                }
                Ok(_) => {
                    tracing::warn!(root = %root.display(), "media folder is not a folder; no file will be found in it");
                    canonical.push(root.clone());
                    present.push(false);
                }
                Err(e) => {
                    tracing::warn!(root = %root.display(), error = %e, "media folder cannot be used; no file will be found in it");
                    canonical.push(root.clone());
                    present.push(false);
                }
            }
        }
        MediaRoots {
            roots: canonical,
            present,
            configured: roots.to_vec(),
        }
    }

    /// Resolves a requested media path to the canonical path of a file
    /// inside a media folder.
    ///
    /// - `..` components are refused outright, relative or absolute: the
    ///   daemon never needs them, and refusing them before touching the
    ///   disk means no answer tells whether a file outside exists.
    /// - Absolute path: canonicalised (symlinks resolved) and required to be
    ///   inside a canonical root.
    /// - Relative path: tried against each root in order; the first root
    ///   where it exists wins, and its canonical form must still be inside
    ///   that root (a symlink escaping the folder is refused, not skipped
    ///   in favour of a later root).
    pub fn resolve(&self, requested: &Path) -> Result<PathBuf, PathError> {
        if self.roots.is_empty() {
            return Err(PathError::NoRoots);
        }
        if requested
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(PathError::ParentComponent {
                path: requested.to_path_buf(),
                roots: self.configured.clone(),
            });
        }
        if requested.is_absolute() {
            self.resolve_absolute(requested)
        } else {
            self.resolve_relative(requested)
        }
    }

    /// The roots, canonicalised where they exist, in configured order.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn present_roots(&self) -> impl Iterator<Item = &PathBuf> {
        self.roots
            .iter()
            .zip(&self.present)
            .filter_map(|(root, &present)| present.then_some(root))
    }

    fn resolve_absolute(&self, requested: &Path) -> Result<PathBuf, PathError> {
        // Answer "outside" before looking at the disk when the path is
        // plainly elsewhere (/etc/passwd), so existence outside is never
        // revealed. Roots may be configured through a symlink
        // (/srv/media → /mnt/usb), so the path as configured counts too.
        let maybe_inside = self.present_roots().any(|r| requested.starts_with(r))
            || self
                .configured
                .iter()
                .zip(&self.present)
                .filter(|(_, &present)| present)
                .filter_map(|(c, _)| std::path::absolute(c).ok())
                .any(|c| requested.starts_with(c));
        if !maybe_inside {
            return Err(self.outside(requested));
        }
        let canonical = match fs::canonicalize(requested) {
            Ok(c) => c,
            Err(e) if is_missing(&e) => return Err(self.not_found(requested)),
            Err(e) => return Err(unreadable(requested, &e)),
        };
        if !self.present_roots().any(|r| canonical.starts_with(r)) {
            return Err(self.outside(requested));
        }
        require_file(requested, canonical)
    }

    fn resolve_relative(&self, requested: &Path) -> Result<PathBuf, PathError> {
        for root in self.present_roots() {
            let canonical = match fs::canonicalize(root.join(requested)) {
                Ok(c) => c,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(unreadable(requested, &e)),
            };
            if !canonical.starts_with(root) {
                return Err(self.outside(requested));
            }
            return require_file(requested, canonical);
        }
        Err(self.not_found(requested))
    }

    fn outside(&self, requested: &Path) -> PathError {
        PathError::Outside {
            path: requested.to_path_buf(),
            roots: self.configured.clone(),
        }
    }

    fn not_found(&self, requested: &Path) -> PathError {
        PathError::NotFound {
            path: requested.to_path_buf(),
            roots: self.configured.clone(),
        }
    }
}

/// `a.mp3/x` (a file used as a folder) is as missing as `nothere.mp3`.
fn is_missing(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn unreadable(requested: &Path, e: &io::Error) -> PathError {
    let text = e.to_string();
    let reason = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    PathError::Unreadable {
        path: requested.to_path_buf(),
        reason,
    }
}

fn require_file(requested: &Path, canonical: PathBuf) -> Result<PathBuf, PathError> {
    match fs::metadata(&canonical) {
        Ok(m) if m.is_file() => Ok(canonical),
        Ok(_) => Err(PathError::NotAFile {
            path: requested.to_path_buf(),
        }),
        Err(e) => Err(unreadable(requested, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A media root holding `news/morning.mp3` and `anthem.mp3`, and an
    /// outside folder holding `secret.txt`.
    struct Fixture {
        _tmp: tempfile::TempDir,
        media: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let media = base.join("media");
        let outside = base.join("outside");
        fs::create_dir_all(media.join("news")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(media.join("news/morning.mp3"), b"x").unwrap();
        fs::write(media.join("anthem.mp3"), b"x").unwrap();
        fs::write(outside.join("secret.txt"), b"x").unwrap();
        Fixture {
            _tmp: tmp,
            media,
            outside,
        }
    }

    #[test]
    fn relative_path_inside_a_root_resolves() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        assert_eq!(
            roots.resolve(Path::new("anthem.mp3")).unwrap(),
            f.media.join("anthem.mp3")
        );
    }

    #[test]
    fn nested_relative_path_resolves() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        assert_eq!(
            roots.resolve(Path::new("./news/morning.mp3")).unwrap(),
            f.media.join("news/morning.mp3")
        );
    }

    #[test]
    fn absolute_path_inside_a_root_resolves() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        let path = f.media.join("news/morning.mp3");
        assert_eq!(roots.resolve(&path).unwrap(), path);
    }

    #[test]
    fn first_root_that_has_the_file_wins() {
        let f = fixture();
        let second = f.outside.clone();
        fs::write(second.join("anthem.mp3"), b"y").unwrap();
        fs::write(second.join("only-here.mp3"), b"y").unwrap();
        let roots = MediaRoots::new(&[f.media.clone(), second.clone()]);
        assert_eq!(
            roots.resolve(Path::new("anthem.mp3")).unwrap(),
            f.media.join("anthem.mp3")
        );
        assert_eq!(
            roots.resolve(Path::new("only-here.mp3")).unwrap(),
            second.join("only-here.mp3")
        );
    }

    #[test]
    fn parent_component_is_refused() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        let err = roots
            .resolve(Path::new("../outside/secret.txt"))
            .unwrap_err();
        assert!(matches!(err, PathError::ParentComponent { .. }), "{err:?}");
        let err = roots
            .resolve(&f.media.join("news/../../outside/secret.txt"))
            .unwrap_err();
        assert!(matches!(err, PathError::ParentComponent { .. }), "{err:?}");
    }

    #[test]
    fn absolute_path_outside_is_refused() {
        let f = fixture();
        let roots = MediaRoots::new(&[PathBuf::from("assets"), f.media.clone()]);
        let err = roots.resolve(Path::new("/etc/passwd")).unwrap_err();
        assert!(matches!(err, PathError::Outside { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "/etc/passwd is outside the media folders (assets, {})",
                f.media.display()
            )
        );
        let err = roots.resolve(&f.outside.join("secret.txt")).unwrap_err();
        assert!(matches!(err, PathError::Outside { .. }), "{err:?}");
    }

    #[test]
    fn symlink_inside_a_root_pointing_outside_is_refused() {
        let f = fixture();
        symlink(f.outside.join("secret.txt"), f.media.join("evil.mp3")).unwrap();
        symlink(&f.outside, f.media.join("elsewhere")).unwrap();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        for request in [
            PathBuf::from("evil.mp3"),
            PathBuf::from("elsewhere/secret.txt"),
            f.media.join("evil.mp3"),
        ] {
            let err = roots.resolve(&request).unwrap_err();
            assert!(
                matches!(err, PathError::Outside { .. }),
                "{request:?}: {err:?}"
            );
        }
    }

    #[test]
    fn symlink_within_a_root_resolves_to_its_target() {
        let f = fixture();
        symlink(f.media.join("news/morning.mp3"), f.media.join("latest.mp3")).unwrap();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        assert_eq!(
            roots.resolve(Path::new("latest.mp3")).unwrap(),
            f.media.join("news/morning.mp3")
        );
    }

    #[test]
    fn root_configured_through_a_symlink_accepts_both_spellings() {
        let f = fixture();
        let link = f.outside.join("media-link");
        symlink(&f.media, &link).unwrap();
        let roots = MediaRoots::new(std::slice::from_ref(&link));
        assert_eq!(roots.roots(), std::slice::from_ref(&f.media));
        assert_eq!(
            roots.resolve(&link.join("anthem.mp3")).unwrap(),
            f.media.join("anthem.mp3")
        );
    }

    #[test]
    fn missing_file_is_reported() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        let err = roots.resolve(Path::new("nothere.mp3")).unwrap_err();
        assert!(matches!(err, PathError::NotFound { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("nothere.mp3 does not exist in any media folder"));
        let err = roots.resolve(&f.media.join("nothere.mp3")).unwrap_err();
        assert!(matches!(err, PathError::NotFound { .. }), "{err:?}");
        let err = roots
            .resolve(Path::new("anthem.mp3/inner.mp3"))
            .unwrap_err();
        assert!(matches!(err, PathError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn folder_is_not_a_file() {
        let f = fixture();
        let roots = MediaRoots::new(std::slice::from_ref(&f.media));
        let err = roots.resolve(Path::new("news")).unwrap_err();
        assert_eq!(err.to_string(), "news is not a file");
    }

    #[test]
    fn missing_root_is_kept_but_never_matches() {
        let f = fixture();
        let gone = f.outside.join("not-mounted");
        let roots = MediaRoots::new(&[gone.clone(), f.media.clone()]);
        assert_eq!(roots.roots(), [gone.clone(), f.media.clone()]);
        assert!(matches!(
            roots.resolve(&gone.join("a.mp3")).unwrap_err(),
            PathError::Outside { .. }
        ));
        assert!(roots.resolve(Path::new("anthem.mp3")).is_ok());
    }

    #[test]
    fn no_roots_is_reported() {
        let err = MediaRoots::new(&[])
            .resolve(Path::new("a.mp3"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no media folders are configured ([daemon] media_roots is empty)"
        );
    }
}
