//! Deterministic zip archives: entries sorted by name, a fixed timestamp (1980-01-01, the
//! earliest a zip can hold), permissions normalised to 0644 or 0755, deflate at a fixed level,
//! no extra fields. The same inputs give byte-identical archives, so a zip's sha256 is a
//! content address (and, base64-encoded, the `CodeSha256` that Lambda reports).

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One file to put into an archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Path inside the archive, `/`-separated, relative.
    pub name: String,
    /// Where the bytes come from.
    pub source: PathBuf,
    /// Whether the file is executable (mode 0755 instead of 0644).
    pub executable: bool,
}

/// Writes `entries` (sorted here) into `out`. Returns the total uncompressed size.
pub fn write_zip<W: Write + Seek>(out: W, entries: &mut [Entry]) -> std::io::Result<u64> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zip = ZipWriter::new(out);
    let base = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(DateTime::default())
        .large_file(false);
    let mut total = 0u64;
    let mut buf = Vec::new();
    for e in entries.iter() {
        buf.clear();
        std::fs::File::open(&e.source)?.read_to_end(&mut buf)?;
        total += buf.len() as u64;
        let opts = base.unix_permissions(if e.executable { 0o755 } else { 0o644 });
        zip.start_file(e.name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        zip.write_all(&buf)?;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_give_identical_bytes_whatever_the_order_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.js");
        let b = dir.path().join("b.sh");
        std::fs::write(&a, "exports.h = 1;\n").unwrap();
        std::fs::write(&b, "#!/bin/sh\necho hi\n").unwrap();
        let entries = vec![
            Entry {
                name: "b.sh".into(),
                source: b.clone(),
                executable: true,
            },
            Entry {
                name: "src/a.js".into(),
                source: a.clone(),
                executable: false,
            },
        ];
        let mut first = std::io::Cursor::new(Vec::new());
        write_zip(&mut first, &mut entries.clone()).unwrap();
        // Touch a file and reverse the order: nothing may change.
        std::fs::write(&a, "exports.h = 1;\n").unwrap();
        let mut second = std::io::Cursor::new(Vec::new());
        let mut rev: Vec<Entry> = entries.into_iter().rev().collect();
        write_zip(&mut second, &mut rev).unwrap();
        assert_eq!(first.get_ref(), second.get_ref());

        let mut z = zip::ZipArchive::new(std::io::Cursor::new(first.into_inner())).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().into_owned())
            .collect();
        assert_eq!(names, ["b.sh", "src/a.js"]);
        assert_eq!(
            z.by_name("b.sh").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
        assert_eq!(
            z.by_name("src/a.js").unwrap().unix_mode().unwrap() & 0o777,
            0o644
        );
    }
}
