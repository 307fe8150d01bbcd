//! ferry's custom handler for Azure Functions: serves the Functions host on
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and runs the app's Lambda Runtime API binaries (see
//! `ferry_azure::adapter`). It sits at the app's root as `ferry-adapter`.

fn main() {
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    // The app root: where this executable is (the host starts it from there as well).
    let root = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("listening on 127.0.0.1:{port}: {e}"))?;
        ferry_azure::adapter::serve(root, listener).await
    });
    if let Err(e) = result {
        eprintln!("ferry-adapter: {e}");
        std::process::exit(1);
    }
}
