//! Plain-text tables for operators: left-aligned columns sized to their
//! widest cell, two spaces apart, no trailing blanks.
//!
//! Must not touch: what goes in the cells (each command's renderer).

/// Left-aligned columns sized to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// The last component of a path, as tables show files.
pub fn file_name(path: &str) -> &str {
    std::path::Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path)
}

/// An RFC 3339 time as tables show it: a space instead of the `T`.
pub fn spaced(time: &str) -> String {
    time.replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }

    #[test]
    fn widths_count_characters_not_bytes_and_empty_last_cells_leave_no_blanks() {
        let t = table(&["THÔN", "X"], &[vec!["Đồng Tâm".into(), "".into()]]);
        assert_eq!(t, "THÔN      X\nĐồng Tâm\n");
    }

    #[test]
    fn file_names_and_times_as_tables_show_them() {
        assert_eq!(file_name("/srv/audio/tin.mp3"), "tin.mp3");
        assert_eq!(file_name("tin.mp3"), "tin.mp3");
        assert_eq!(spaced("2026-11-27T17:00:00+07:00"), "2026-11-27 17:00:00+07:00");
    }
}
