//! Python dependencies: `requirements.txt` installed with `pip install --target` into a cache
//! folder keyed by the requirements' hash, the Python version and the architecture, then
//! copied into every Python function's package.

use super::select::hex;
use super::PackageError;
use crate::model::Architecture;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs (or finds in the cache) the requirements of `root`. `None` when there are none.
pub fn vendor(
    root: &Path,
    cache: &Path,
    python_minor: u32,
    arch: Architecture,
    function: &str,
) -> Result<Option<(PathBuf, Vec<String>)>, PackageError> {
    let req = root.join("requirements.txt");
    let Ok(text) = std::fs::read_to_string(&req) else {
        return Ok(None);
    };
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(None);
    }
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    h.update(format!("|py3.{python_minor}|{arch:?}").as_bytes());
    let key = hex(&h.finalize());
    let target = cache.join("pip").join(&key[..16]);
    let mut warnings = Vec::new();
    if target.join(".ferry-complete").is_file() {
        return Ok(Some((target, warnings)));
    }
    let tmp = cache
        .join("pip")
        .join(format!("{}.tmp-{}", &key[..16], std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| PackageError::io(&tmp, e))?;
    let platform = match arch {
        Architecture::X86_64 => "manylinux2014_x86_64",
        Architecture::Arm64 => "manylinux2014_aarch64",
    };
    // First ask for wheels built for Lambda's platform; a requirement that only exists as a
    // source distribution is then built for this machine, with a warning.
    let base = |cmd: &mut Command| {
        cmd.current_dir(root)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
            ])
            .arg(&tmp)
            .args(["-r", "requirements.txt"]);
    };
    let python = std::env::var("FERRY_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    base(&mut cmd);
    cmd.args([
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--python-version",
    ])
    .arg(format!("3.{python_minor}"));
    let first = cmd.output().map_err(|e| PackageError::Build {
        function: function.to_owned(),
        command: format!("{python} -m pip install"),
        output: e.to_string(),
        hint: "install Python 3 with pip, or point FERRY_PYTHON at an interpreter".into(),
    })?;
    if !first.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| PackageError::io(&tmp, e))?;
        let mut cmd = Command::new(&python);
        base(&mut cmd);
        let second = cmd.output().map_err(|e| PackageError::io(&req, e))?;
        if !second.status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(PackageError::Build {
                function: function.to_owned(),
                command: format!("{python} -m pip install --target <cache> -r requirements.txt"),
                output: String::from_utf8_lossy(&second.stderr).trim().to_owned(),
                hint: "fix requirements.txt so that `pip install -r requirements.txt` succeeds"
                    .into(),
            });
        }
        warnings.push(format!(
            "requirements.txt: no {platform} wheels for every requirement; installed for this machine instead, so native extensions may not load on the provider"
        ));
    }
    std::fs::write(tmp.join(".ferry-complete"), "").map_err(|e| PackageError::io(&tmp, e))?;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&tmp, &target).map_err(|e| PackageError::io(&target, e))?;
    Ok(Some((target, warnings)))
}
