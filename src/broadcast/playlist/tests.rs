use super::*;

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn m3u_with_relative_absolute_file_url_extinf_crlf_and_bom() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("news.m3u8");
    let text = "\u{feff}#EXTM3U\r\n\
                #EXTINF:125,Bản tin sáng\r\n\
                news/morning.mp3\r\n\
                \r\n\
                # a comment\r\n\
                /srv/loa/media/anthem.ogg\r\n\
                #EXTINF:-1,Weather\r\n\
                file:///srv/loa/media/th%E1%BB%9Di%20ti%E1%BA%BFt.mp3\r\n\
                file://localhost/srv/a.wav\r\n\
                music\\folk\\ru%20con.flac\r\n";
    fs::write(&list, text).unwrap();

    let entries = load(&list).unwrap();
    assert_eq!(
        entries,
        vec![
            Entry {
                path: dir.path().join("news/morning.mp3"),
                title: Some("Bản tin sáng".into()),
                duration: secs(125),
            },
            Entry::file("/srv/loa/media/anthem.ogg".into()),
            Entry {
                path: "/srv/loa/media/thời tiết.mp3".into(),
                title: Some("Weather".into()),
                duration: None,
            },
            Entry::file("/srv/a.wav".into()),
            // Relative: backslashes are separators, no percent-decoding.
            Entry::file(dir.path().join("music/folk/ru%20con.flac")),
        ]
    );
}

#[test]
fn m3u_missing_files_are_kept_as_entries() {
    let entries =
        parse_m3u("gone.mp3\n", Path::new("/lists"), Path::new("/lists/a.m3u")).unwrap();
    assert_eq!(entries, vec![Entry::file("/lists/gone.mp3".into())]);
}

#[test]
fn m3u_absolute_path_keeps_backslash() {
    let entries = parse_m3u("/srv/a\\b.mp3\n", Path::new("/l"), Path::new("/l/a.m3u")).unwrap();
    assert_eq!(entries[0].path, PathBuf::from("/srv/a\\b.mp3"));
}

#[test]
fn m3u_extinf_with_fractional_seconds_and_attributes() {
    let text = "#EXTINF:12.5 tvg-id=\"x\",Title, with comma\na.mp3\n";
    let entries = parse_m3u(text, Path::new("/l"), Path::new("/l/a.m3u")).unwrap();
    assert_eq!(entries[0].duration, Some(Duration::from_millis(12_500)));
    assert_eq!(entries[0].title.as_deref(), Some("Title, with comma"));
}

#[test]
fn m3u_stream_url_is_an_error_with_line_number() {
    let text = "#EXTM3U\na.mp3\n\nhttp://radio.example.vn/live\n";
    let err = parse_m3u(text, Path::new("/x"), Path::new("/x/a.m3u")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::StreamUrl { line: 4, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "playlist /x/a.m3u line 4: http://radio.example.vn/live is a stream URL; loa plays files only"
    );
    for url in [
        "HTTPS://a/b",
        "rtp://239.1.1.1:5004",
        "udp://@239.1.1.1:1234",
    ] {
        let err = parse_m3u(url, Path::new("/x"), Path::new("/x/a.m3u")).unwrap_err();
        assert!(
            matches!(err, PlaylistError::StreamUrl { line: 1, .. }),
            "{url}: {err:?}"
        );
    }
}

#[test]
fn m3u_windows_drive_path_is_an_error() {
    let err = parse_m3u(
        "x.mp3\nC:\\Music\\a.mp3\n",
        Path::new("/x"),
        Path::new("/x/a.m3u"),
    )
    .unwrap_err();
    assert!(
        matches!(err, PlaylistError::WindowsPath { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn m3u_remote_file_url_is_an_error() {
    let err = parse_m3u(
        "file://pc/share/a.mp3",
        Path::new("/x"),
        Path::new("/x/a.m3u"),
    )
    .unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn m3u_bad_extinf_is_an_error_with_line_number() {
    let err = parse_m3u(
        "#EXTINF:abc,T\na.mp3",
        Path::new("/x"),
        Path::new("/x/a.m3u"),
    )
    .unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn pls_entries_are_ordered_by_number_with_titles_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("Morning.PLS");
    let text = "[playlist]\n\
                File2=/srv/b.mp3\n\
                Title2=Second\n\
                Length2=-1\n\
                ; comment\n\
                File1=a.mp3\n\
                Title1=First\n\
                Length1=60\n\
                File10=c.mp3\n\
                X-Vendor=ignored\n\
                NumberOfEntries=3\n\
                Version=2\n";
    fs::write(&list, text).unwrap();

    let entries = load(&list).unwrap();
    assert_eq!(
        entries,
        vec![
            Entry {
                path: dir.path().join("a.mp3"),
                title: Some("First".into()),
                duration: secs(60),
            },
            Entry {
                path: "/srv/b.mp3".into(),
                title: Some("Second".into()),
                duration: None,
            },
            Entry::file(dir.path().join("c.mp3")),
        ]
    );
}

#[test]
fn pls_without_header_is_an_error() {
    let err = parse_pls("File1=a.mp3\n", Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 1, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("playlist /x/a.pls line 1: expected the [playlist] header"));
}

#[test]
fn pls_malformed_line_is_an_error_with_line_number() {
    let text = "[playlist]\nFile1=a.mp3\nthis is not a key\n";
    let err = parse_pls(text, Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn pls_bad_length_is_an_error() {
    let text = "[playlist]\nFile1=a.mp3\nLength1=3:20\n";
    let err = parse_pls(text, Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn pls_stream_url_is_an_error() {
    let text = "[playlist]\nFile1=http://radio/stream\n";
    let err = parse_pls(text, Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::StreamUrl { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn pls_absurd_entry_number_is_refused() {
    let text = "[playlist]\nFile4000000000=a.mp3\n";
    let err = parse_pls(text, Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::Malformed { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn load_refuses_other_extensions() {
    let err = load(Path::new("/x/a.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/a.txt is not a playlist (expected .m3u, .m3u8 or .pls)"
    );
}

#[test]
fn load_reports_missing_playlist_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("a.m3u");
    let err = load(&list).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read playlist {}: file not found",
            list.display()
        )
    );
}

#[test]
fn load_reports_non_utf8_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("a.m3u");
    fs::write(&list, b"a.mp3\nb\xe9.mp3\n").unwrap();
    let err = load(&list).unwrap_err();
    assert!(
        matches!(err, PlaylistError::NotUtf8 { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn oversize_playlist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("huge.m3u");
    let file = fs::File::create(&list).unwrap();
    file.set_len(MAX_PLAYLIST_BYTES as u64 + 1).unwrap();
    let err = load(&list).unwrap_err();
    assert!(matches!(err, PlaylistError::TooLarge { .. }), "{err:?}");

    let text = "a\n".repeat(MAX_PLAYLIST_BYTES / 2 + 1);
    let err = parse_m3u(&text, Path::new("/x"), Path::new("/x/a.m3u")).unwrap_err();
    assert!(matches!(err, PlaylistError::TooLarge { .. }), "{err:?}");
}

#[test]
fn playlist_with_too_many_entries_is_refused() {
    let text = "a\n".repeat(MAX_ENTRIES + 1);
    let err = parse_m3u(&text, Path::new("/x"), Path::new("/x/a.m3u")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::TooManyEntries { .. }),
        "{err:?}"
    );
    let text = format!("[playlist]\nNumberOfEntries={}\n", MAX_ENTRIES + 1);
    let err = parse_pls(&text, Path::new("/x"), Path::new("/x/a.pls")).unwrap_err();
    assert!(
        matches!(err, PlaylistError::TooManyEntries { .. }),
        "{err:?}"
    );
}

#[test]
fn scan_dir_lists_audio_files_sorted_by_name_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "b.mp3",
        "a.FLAC",
        "B.ogg",
        "notes.txt",
        "10.wav",
        "9.opus",
        "._a.mp3",
        "cover.jpg",
    ] {
        fs::write(dir.path().join(name), b"x").unwrap();
    }
    fs::create_dir(dir.path().join("sub.mp3")).unwrap();
    fs::write(dir.path().join("sub.mp3/inner.mp3"), b"x").unwrap();

    let names: Vec<String> = scan_dir(dir.path())
        .unwrap()
        .into_iter()
        .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["10.wav", "9.opus", "B.ogg", "a.FLAC", "b.mp3"]);
}

#[test]
fn scan_dir_without_audio_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("readme.txt"), b"x").unwrap();
    let err = scan_dir(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "directory {} holds no audio files (looked for .mp3 .m4a .aac .flac .ogg .oga .opus .wav)",
            dir.path().display()
        )
    );
}

#[test]
fn shuffle_is_a_permutation() {
    let mut items: Vec<u32> = (0..100).collect();
    shuffle(&mut items, 7);
    assert_ne!(items, (0..100).collect::<Vec<_>>());
    items.sort_unstable();
    assert_eq!(items, (0..100).collect::<Vec<_>>());
}

#[test]
fn shuffle_is_deterministic_per_seed() {
    let run = |seed| {
        let mut items: Vec<u32> = (0..20).collect();
        shuffle(&mut items, seed);
        items
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
    // Pinned: the order must not change between loa versions.
    let mut five = [0, 1, 2, 3, 4];
    shuffle(&mut five, 1);
    assert_eq!(five, PINNED_SEED_1);
    shuffle(&mut [0u8; 0], 1);
    shuffle(&mut [0u8; 1], 1);
}

#[test]
fn shuffle_generator_is_splitmix64() {
    // First outputs for seed 1234567 from the reference splitmix64.c.
    let mut rng = SplitMix64(1234567);
    assert_eq!(rng.next_u64(), 6457827717110365317);
    assert_eq!(rng.next_u64(), 3203168211198807973);
}

const PINNED_SEED_1: [i32; 5] = [1, 0, 3, 4, 2];

#[test]
fn total_duration_uses_playlist_lengths_then_probes_files() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for _ in 0..16_000 {
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();

    let entries = [
        Entry {
            path: dir.path().join("missing.mp3"),
            title: None,
            duration: secs(30),
        },
        Entry::file(wav),
        Entry::file(dir.path().join("missing.mp3")),
    ];
    assert_eq!(total_duration(&entries), (Duration::from_secs(32), 1));
}
