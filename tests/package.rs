//! `ferry package` end to end: deterministic zips, node production dependencies, python
//! vendoring through pip, rust `bootstrap` that really runs (against a fake Lambda Runtime
//! API), errors that leave earlier artifacts untouched, and provider size limits.

use assert_cmd::Command;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ferry(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("ferry")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn zip_names(path: &Path) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().into_owned())
        .collect()
}

/// A node service with production and development dependencies installed.
fn node_service() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("serverless.yaml"),
        "service: shop\nprovider:\n  runtime: nodejs22\nfunctions:\n  api:\n    handler: src/api.handler\n    triggers:\n      - http: GET /a\n  other:\n    handler: src/other.handler\n    package: { include: [src/other.js] }\n",
    );
    write(
        &d.join("src/api.js"),
        "exports.handler = async () => ({ statusCode: 200 });\n",
    );
    write(
        &d.join("src/other.js"),
        "exports.handler = async () => 1;\n",
    );
    write(&d.join("README.md"), "docs\n");
    write(&d.join(".env"), "SECRET=1\n");
    write(&d.join("tests/api.test.js"), "test\n");
    write(
        &d.join("package.json"),
        r#"{"name":"shop","dependencies":{"left-pad":"1"},"devDependencies":{"jest":"1"}}"#,
    );
    write(
        &d.join("node_modules/left-pad/package.json"),
        r#"{"name":"left-pad","dependencies":{"tiny":"1"}}"#,
    );
    write(
        &d.join("node_modules/left-pad/index.js"),
        "module.exports = 1;\n",
    );
    write(
        &d.join("node_modules/tiny/package.json"),
        r#"{"name":"tiny"}"#,
    );
    write(
        &d.join("node_modules/tiny/index.js"),
        "module.exports = 2;\n",
    );
    write(
        &d.join("node_modules/jest/package.json"),
        r#"{"name":"jest"}"#,
    );
    write(&d.join("node_modules/jest/index.js"), "big dev tool\n");
    dir
}

#[test]
fn zips_are_byte_identical_across_runs_and_folders_and_ignore_mtime() {
    let svc = node_service();
    let d = svc.path();
    // Two output folders outside the service folder.
    let outs = tempfile::tempdir().unwrap();
    let (out1, out2) = (outs.path().join("out1"), outs.path().join("out2"));
    let (code, _, err) = ferry(d, &["package", "--out", out1.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Touch every source file (same content, new mtime), and package into another folder
    // with the cache removed, so the second zip is really rebuilt.
    for f in ["src/api.js", "src/other.js", "node_modules/tiny/index.js"] {
        let text = std::fs::read(d.join(f)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(d.join(f), text).unwrap();
    }
    std::fs::remove_dir_all(d.join(".ferry/cache")).unwrap();
    let (code, out, err) = ferry(d, &["package", "--out", out2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("built"), "{out}");
    for f in ["api.zip", "other.zip", "index.json"] {
        let (a, b) = (
            std::fs::read(out1.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs between the two runs");
    }
    // A third run with nothing changed comes from the cache.
    let (_, out, _) = ferry(d, &["package", "--out", out2.to_str().unwrap()]);
    assert!(out.contains("(2 from cache)"), "{out}");
    // The index records what Lambda would report as CodeSha256.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("index.json")).unwrap()).unwrap();
    let zip = std::fs::read(out1.join("api.zip")).unwrap();
    use base64::Engine;
    use sha2::Digest;
    let expected = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&zip));
    assert_eq!(index["functions"]["api"]["codeSha256"], expected);
    assert_eq!(index["functions"]["api"]["size"], zip.len());
}

#[test]
fn node_production_dependencies_in_dev_dependencies_and_dotfiles_out() {
    let svc = node_service();
    let d = svc.path();
    let (code, _, err) = ferry(d, &["package"]);
    assert_eq!(code, 0, "{err}");
    let names = zip_names(&d.join(".ferry/build/dev/api.zip"));
    assert_eq!(
        names,
        [
            "README.md",
            "node_modules/left-pad/index.js",
            "node_modules/left-pad/package.json",
            "node_modules/tiny/index.js",
            "node_modules/tiny/package.json",
            "package.json",
            "src/api.js",
            "src/other.js"
        ]
    );
    // `include` narrows the function's own files; dependencies still come along.
    let names = zip_names(&d.join(".ferry/build/dev/other.zip"));
    assert!(
        names.contains(&"src/other.js".to_owned()) && !names.contains(&"src/api.js".to_owned()),
        "{names:?}"
    );
}

#[test]
fn a_missing_handler_names_the_function_and_leaves_earlier_artifacts_untouched() {
    let svc = node_service();
    let d = svc.path();
    assert_eq!(ferry(d, &["package"]).0, 0);
    let before = std::fs::read(d.join(".ferry/build/dev/index.json")).unwrap();
    let zip_before = std::fs::read(d.join(".ferry/build/dev/api.zip")).unwrap();
    // Change one file (so `api` would be rebuilt) and break the other function.
    write(
        &d.join("src/api.js"),
        "exports.handler = async () => ({ statusCode: 201 });\n",
    );
    std::fs::remove_file(d.join("src/other.js")).unwrap();
    let (code, _, err) = ferry(d, &["package"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("function `other`"), "{err}");
    assert!(err.contains("src/other.js"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        std::fs::read(d.join(".ferry/build/dev/index.json")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(d.join(".ferry/build/dev/api.zip")).unwrap(),
        zip_before
    );
    // A handler left out by the default excludes says how to bring it back.
    write(&d.join("tests/handler.js"), "exports.h = 1;\n");
    write(&d.join("serverless.yaml"), "service: shop\nprovider:\n  runtime: nodejs22\nfunctions:\n  t:\n    handler: tests/handler.h\n");
    let (code, _, err) = ferry(d, &["package"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("leaves it out by default") && err.contains("package.include"),
        "{err}"
    );
}

#[test]
fn packages_over_the_lambda_limit_are_refused_with_the_largest_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("serverless.yaml"), "service: big\nprovider:\n  name: aws\n  runtime: python3.12\nfunctions:\n  f:\n    handler: app.main\n");
    write(&d.join("app.py"), "def main(e, c):\n    return 1\n");
    // 51 MiB that does not compress.
    let mut state = 0x2545F4914F6CDD1Du64;
    let data: Vec<u8> = (0..51 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(d.join("model.bin"), data).unwrap();
    let (code, _, err) = ferry(d, &["package"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("function `f`")
            && err.contains("aws's limit of 50.0 MB")
            && err.contains("model.bin"),
        "{err}"
    );
    assert!(!d.join(".ferry/build/dev/f.zip").exists());
}

/// Writes a minimal pure-Python wheel, so that pip installs it with no network.
fn tiny_wheel(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let o = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        ("tinylib/__init__.py", "VALUE = 42\n"),
        (
            "tinylib-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: tinylib\nVersion: 1.0\n",
        ),
        (
            "tinylib-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: ferry-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        ("tinylib-1.0.dist-info/RECORD", ""),
    ] {
        z.start_file(name, o).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn python_requirements_are_vendored_with_pip_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("serverless.yaml"),
        "service: py\nprovider:\n  runtime: python3.12\npackage: { exclude: [wheels/**] }\nfunctions:\n  f:\n    handler: app.main\n",
    );
    write(
        &d.join("app.py"),
        "import tinylib\ndef main(e, c):\n    return tinylib.VALUE\n",
    );
    std::fs::create_dir_all(d.join("wheels")).unwrap();
    tiny_wheel(&d.join("wheels/tinylib-1.0-py3-none-any.whl"));
    write(
        &d.join("requirements.txt"),
        "--no-index\n--find-links wheels\ntinylib==1.0\n",
    );
    let (code, _, err) = ferry(d, &["package"]);
    assert_eq!(code, 0, "{err}");
    let names = zip_names(&d.join(".ferry/build/dev/f.zip"));
    assert!(
        names.contains(&"tinylib/__init__.py".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"app.py".to_owned()));
    assert!(!names.iter().any(|n| n.starts_with("wheels/")), "{names:?}");
    // Vendored once: the pip folder is reused by the second run.
    let (_, out, _) = ferry(d, &["package"]);
    assert!(out.contains("(1 from cache)"), "{out}");
}

/// Serves one invocation the way the Lambda Runtime API does and returns the function's
/// response body.
fn fake_runtime_api(event: serde_json::Value) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            let event = event.clone();
            let first = !served;
            served = true;
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                let mut gave_event = !first;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut len, mut chunked) = (0usize, false);
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if h.starts_with("transfer-encoding:") && h.contains("chunked") {
                            chunked = true;
                        }
                    }
                    let mut body = Vec::new();
                    if chunked {
                        loop {
                            let mut size = String::new();
                            reader.read_line(&mut size).unwrap();
                            let n = usize::from_str_radix(size.trim(), 16).unwrap();
                            let mut chunk = vec![0; n + 2];
                            reader.read_exact(&mut chunk).unwrap();
                            if n == 0 {
                                break;
                            }
                            body.extend_from_slice(&chunk[..n]);
                        }
                    } else {
                        body.resize(len, 0);
                        reader.read_exact(&mut body).unwrap();
                    }
                    if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                        if gave_event {
                            // No second invocation: hold the request, as Lambda does.
                            std::thread::sleep(Duration::from_secs(600));
                            return;
                        }
                        gave_event = true;
                        let payload = event.to_string();
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 30_000;
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:rust-api\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{payload}",
                            payload.len()
                        )
                        .unwrap();
                    } else {
                        if line.contains("/invocation/req-1/response") {
                            tx.send(String::from_utf8_lossy(&body).into_owned())
                                .unwrap();
                        } else {
                            tx.send(format!(
                                "unexpected request: {line} {}",
                                String::from_utf8_lossy(&body)
                            ))
                            .unwrap();
                        }
                        write!(stream, "HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{{\"status\":\"OK\"}}").unwrap();
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn rust_example_ships_an_executable_bootstrap_that_serves_an_invocation() {
    let example = root().join("examples/rust-api");
    let out = tempfile::tempdir().unwrap();
    let (code, _, err) = ferry(
        &example,
        &["package", "--out", out.path().to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let mut z =
        zip::ZipArchive::new(std::fs::File::open(out.path().join("api.zip")).unwrap()).unwrap();
    assert_eq!(zip_names(&out.path().join("api.zip")), ["bootstrap"]);
    let mut entry = z.by_name("bootstrap").unwrap();
    assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
    let bin = out.path().join("bootstrap");
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    std::fs::write(&bin, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /items", "rawPath": "/items", "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": "GET", "path": "/items", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1", "routeKey": "GET /items", "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    let (addr, rx) = fake_runtime_api(event);
    let mut child = std::process::Command::new(&bin)
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "rust-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .spawn()
        .unwrap();
    let response = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let response: serde_json::Value =
        serde_json::from_str(&response.expect("bootstrap answered the invocation")).unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body[0]["name"], "kettle", "{body}");
}
