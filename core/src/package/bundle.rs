//! A provider's deployable package assembled from function zips and generated files (an Azure
//! Function App, a Google Cloud Function's source): the files are gathered in memory, clashes
//! are errors that name who brought each file, and the result is written as a folder and as a
//! deterministic zip of that folder.

use super::zipper::{write_zip, Entry};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The bundles this process wrote: zip path -> (digest of the files, what was written). A
/// deploy compiles twice (the plan, then the apply that checks it against the plan), and a
/// provider writes its packages in compile; writing the same files to the same place again
/// would only repeat the unzipping, deflating and hashing.
static WRITTEN: Mutex<BTreeMap<PathBuf, (String, Written)>> = Mutex::new(BTreeMap::new());

/// The owner recorded for the files a provider generates (not a function name: those cannot
/// contain spaces).
const GENERATED: &str = "ferry (generated)";

/// Files by path in the package: who brought each, its bytes, whether it is executable.
#[derive(Debug, Default)]
pub struct Bundle {
    files: BTreeMap<String, (String, Vec<u8>, bool)>,
}

/// A bundle as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The unpacked folder.
    pub dir: PathBuf,
    /// The zip of that folder.
    pub zip: PathBuf,
    /// Hex sha256 of the zip.
    pub sha256: String,
    /// Zip size in bytes.
    pub size: u64,
    /// Files in the zip.
    pub files: usize,
}

impl Bundle {
    /// An empty bundle.
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// Adds a function zip's files under `prefix`; the same path from two functions must hold
    /// the same bytes (`together` says what they share, for the error).
    pub fn add_zip(
        &mut self,
        function: &str,
        path: &Path,
        prefix: &str,
        together: &str,
    ) -> Result<(), String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut z = zip::ZipArchive::new(f).map_err(|e| format!("{}: {e}", path.display()))?;
        for i in 0..z.len() {
            let mut e = z
                .by_index(i)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if e.is_dir() {
                continue;
            }
            let Some(name) = e.enclosed_name() else {
                return Err(format!("{}: unsafe path {:?}", path.display(), e.name()));
            };
            let name = format!("{prefix}{}", name.to_string_lossy().replace('\\', "/"));
            let executable = e.unix_mode().is_some_and(|m| m & 0o111 != 0);
            let mut bytes = Vec::with_capacity(e.size() as usize);
            e.read_to_end(&mut bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            match self.files.get(&name) {
                Some((other, prev, _)) if *prev != bytes => {
                    return Err(format!(
                        "functions `{other}` and `{function}` share {together} but package different `{name}`; give them the same file or the same package settings"
                    ));
                }
                Some(_) => {}
                None => {
                    self.files
                        .insert(name, (function.to_owned(), bytes, executable));
                }
            }
        }
        Ok(())
    }

    /// The bytes a function brought at `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|(_, b, _)| b.as_slice())
    }

    /// Adds a file the provider generates. A function file at the same path, or (for a file in
    /// a folder) in or at its top folder, is an error naming `platform`; `replaces` lists the
    /// function files the generated one may overwrite on purpose (a merged `package.json`).
    pub fn add_generated(
        &mut self,
        name: &str,
        bytes: Vec<u8>,
        executable: bool,
        platform: &str,
        replaces: bool,
    ) -> Result<(), String> {
        let top = name.split('/').next().unwrap_or_default();
        let dir_prefix = format!("{top}/");
        let clash = self.files.iter().find(|(k, (owner, _, _))| {
            owner != GENERATED
                && (*k == name && !replaces
                    || name.contains('/') && (k.starts_with(&dir_prefix) || k.as_str() == top))
        });
        if let Some((_, (owner, _, _))) = clash {
            return Err(format!(
                "`{name}` is a file ferry generates for {platform}, but function `{owner}`'s package has `{top}` too; rename the function or move that file"
            ));
        }
        self.files
            .insert(name.to_owned(), (GENERATED.into(), bytes, executable));
        Ok(())
    }

    /// A digest of every file's path, mode and bytes: equal digests write equal packages.
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (name, (_, bytes, executable)) in &self.files {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update([u8::from(*executable)]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        hex::encode(h.finalize())
    }

    /// Writes the files under `dir` (emptied first) and zips them to `zip`. The same files
    /// written to the same place earlier in this process (and still there) are not written
    /// again.
    pub fn write(self, dir: &Path, zip: &Path) -> Result<Written, String> {
        let digest = self.digest();
        let done = WRITTEN.lock().expect("bundle memo").get(zip).cloned();
        if let Some((d, w)) = done {
            if d == digest && w.dir == dir && dir.is_dir() && zip.is_file() {
                return Ok(w);
            }
        }
        let w = self.write_out(dir, zip)?;
        WRITTEN
            .lock()
            .expect("bundle memo")
            .insert(zip.to_owned(), (digest, w.clone()));
        Ok(w)
    }

    /// Writes into a folder and a zip of this process's own, then moves them into place, so
    /// that another ferry process writing the same bundle never sees (or leaves) a half-written
    /// one.
    fn write_out(self, dir: &Path, zip: &Path) -> Result<Written, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        // `<dir><suffix>`, beside it.
        let beside = |suffix: String| {
            let mut p = dir.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let staging = beside(format!(".tmp-{unique}"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .map_err(|e| format!("clearing {}: {e}", staging.display()))?;
        }
        let mut entries = Vec::new();
        for (name, (_, bytes, executable)) in &self.files {
            let path = staging.join(name);
            std::fs::create_dir_all(path.parent().expect("inside the folder"))
                .and_then(|()| std::fs::write(&path, bytes))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            #[cfg(unix)]
            if *executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("chmod {}: {e}", path.display()))?;
            }
            entries.push(Entry {
                name: name.clone(),
                source: path,
                executable: *executable,
            });
        }
        let tmp = zip.with_extension(format!("zip.tmp-{unique}"));
        let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        write_zip(std::io::BufWriter::new(file), &mut entries)
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        // A folder cannot replace a non-empty one in one rename: the old one is renamed away
        // first (atomic too), then removed. Another writer may put its copy in place in
        // between (the same files): that one is renamed away in turn.
        let mut old = Vec::new();
        for attempt in 0.. {
            let away = beside(format!(".old-{unique}-{attempt}"));
            match std::fs::rename(dir, &away) {
                Ok(()) => old.push(away),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("moving {} aside: {e}", dir.display())),
            }
            match std::fs::rename(&staging, dir) {
                Ok(()) => break,
                Err(e) if attempt >= 20 => {
                    return Err(format!("moving {} into place: {e}", dir.display()))
                }
                Err(_) => {}
            }
        }
        for away in old {
            std::fs::remove_dir_all(&away)
                .map_err(|e| format!("clearing {}: {e}", away.display()))?;
        }
        std::fs::rename(&tmp, zip).map_err(|e| format!("{}: {e}", zip.display()))?;
        let bytes = std::fs::read(zip).map_err(|e| format!("{}: {e}", zip.display()))?;
        Ok(Written {
            dir: dir.to_owned(),
            zip: zip.to_owned(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            files: entries.len(),
        })
    }
}

/// The executable that runs Runtime API binaries in a cloud's host (Azure's custom handler,
/// Cloud Run's HTTP server), built and installed with `ferry`, packaged under this name.
pub const ADAPTER: &str = "ferry-adapter";

/// [`ADAPTER`] as installed next to the running `ferry`.
pub fn find_adapter() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.with_file_name(format!("{ADAPTER}{}", std::env::consts::EXE_SUFFIX));
    p.is_file().then_some(p)
}

/// The error when [`find_adapter`] found nothing.
pub fn missing_adapter() -> String {
    format!("{ADAPTER} (which runs Runtime API binaries on Azure and Cloud Run) is not next to the ferry executable; it is built and installed with ferry (`cargo install --path .` installs both)")
}

#[cfg(test)]
mod tests {
    use super::Bundle;

    fn bundle(text: &str) -> Bundle {
        let mut b = Bundle::new();
        b.add_generated("a/file.txt", text.as_bytes().to_vec(), false, "test", false)
            .unwrap();
        b
    }

    #[test]
    fn the_same_files_are_written_once_per_process() {
        let t = tempfile::tempdir().unwrap();
        let (dir, zip) = (t.path().join("app"), t.path().join("app.zip"));
        let first = bundle("one").write(&dir, &zip).unwrap();
        // A file the write would have cleared away shows whether it ran again.
        std::fs::write(dir.join("marker"), "x").unwrap();
        let again = bundle("one").write(&dir, &zip).unwrap();
        assert_eq!(again, first);
        assert!(
            dir.join("marker").exists(),
            "the same files were written again"
        );
        let changed = bundle("two").write(&dir, &zip).unwrap();
        assert!(!dir.join("marker").exists());
        assert_ne!(changed.sha256, first.sha256);
        assert_eq!(
            std::fs::read_to_string(dir.join("a/file.txt")).unwrap(),
            "two"
        );
        // A zip removed since is written again.
        std::fs::remove_file(&zip).unwrap();
        bundle("two").write(&dir, &zip).unwrap();
        assert!(zip.is_file());
    }

    #[test]
    fn writers_racing_for_one_bundle_leave_a_whole_one() {
        let t = tempfile::tempdir().unwrap();
        let (dir, zip) = (t.path().join("app"), t.path().join("app.zip"));
        std::thread::scope(|s| {
            for _ in 0..4 {
                // write_out, not write: the memo would let all but one skip the work.
                s.spawn(|| {
                    for _ in 0..20 {
                        bundle("same").write_out(&dir, &zip).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            std::fs::read_to_string(dir.join("a/file.txt")).unwrap(),
            "same"
        );
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["app", "app.zip"],
            "no staging folder or zip is left behind"
        );
        let z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        assert_eq!(z.len(), 1);
    }
}
