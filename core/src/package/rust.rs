//! Rust functions: `cargo build --release` (or `cargo zigbuild` with glibc pinned to 2.17 when
//! it is installed, as cargo-lambda does), the binary shipped as `bootstrap`.

use super::PackageError;
use crate::model::Architecture;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a build was made, for the user to know.
#[derive(Debug, Clone)]
pub struct Built {
    /// bin name → executable.
    pub binaries: Vec<(String, PathBuf)>,
    /// `cargo zigbuild --target x86_64-unknown-linux-gnu.2.17` or `cargo build (host)`.
    pub how: String,
}

fn has_zigbuild() -> bool {
    Command::new("cargo")
        .args(["zigbuild", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("zig")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn host_arch() -> Architecture {
    if cfg!(target_arch = "aarch64") {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    }
}

/// Builds the given binaries of the crate in `root` for `arch`.
pub fn build(
    root: &Path,
    bins: &[(String, String)],
    arch: Architecture,
) -> Result<Built, PackageError> {
    let functions = bins
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !root.join("Cargo.toml").is_file() {
        return Err(PackageError::Missing {
            function: functions,
            path: root.join("Cargo.toml"),
            hint: "a rust function is built from the Cargo.toml next to the manifest; create the crate there".into(),
        });
    }
    let zig = has_zigbuild();
    let triple = match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root);
    let how = if zig {
        cmd.args(["zigbuild", "--release", "--target"])
            .arg(format!("{triple}.2.17"));
        format!("cargo zigbuild --release --target {triple}.2.17")
    } else {
        if arch != host_arch() {
            return Err(PackageError::Build {
                function: functions,
                command: "cargo build".into(),
                output: format!("the functions are {arch:?} and this machine is {:?}", host_arch()),
                hint: "install cargo-zigbuild and zig (`pip install ziglang`, `cargo install cargo-zigbuild`) to cross-compile".into(),
            });
        }
        cmd.args(["build", "--release"]);
        "cargo build --release (host target; install cargo-zigbuild to pin glibc 2.17)".to_owned()
    };
    for (_, bin) in bins {
        cmd.args(["--bin", bin]);
    }
    cmd.arg("--message-format=json-render-diagnostics");
    let out = cmd.output().map_err(|e| PackageError::Build {
        function: functions.clone(),
        command: how.clone(),
        output: e.to_string(),
        hint: "install Rust (rustup) so that `cargo` is on the PATH".into(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(PackageError::Build {
            function: functions,
            command: how,
            output: tail.join("\n"),
            hint: format!(
                "fix the build errors above; `cargo build --release` in {} shows them in full",
                root.display()
            ),
        });
    }
    // The executables, as cargo reports them (whatever CARGO_TARGET_DIR is).
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(name), Some(exe)) =
            (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            binaries.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    for (function, bin) in bins {
        if !binaries.iter().any(|(n, _)| n == bin) {
            return Err(PackageError::Missing {
                function: function.clone(),
                path: root.join("Cargo.toml"),
                hint: format!("cargo built no binary named `{bin}`; the handler of a rust function is the name of a `[[bin]]` (or the package) in Cargo.toml"),
            });
        }
    }
    Ok(Built { binaries, how })
}
