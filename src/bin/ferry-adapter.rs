//! `ferry-adapter`: runs the Lambda Runtime API binaries of a package in a cloud's function
//! host. It sits at the package root; which host started it decides what it serves:
//! - Azure Functions (`FUNCTIONS_CUSTOMHANDLER_PORT` set): the custom handler protocol on
//!   127.0.0.1 (`ferry_azure::adapter`);
//! - otherwise (Cloud Run sets `PORT`, 8080 by default): plain HTTP on every interface, http
//!   routes and event deliveries (`ferry_gcp::adapter`).

fn main() {
    let env_port = |name: &str| std::env::var(name).ok().and_then(|p| p.parse::<u16>().ok());
    // The package root: where this executable is (the host starts it from there as well).
    let root = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(async {
        match env_port("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(port) => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .map_err(|e| format!("listening on 127.0.0.1:{port}: {e}"))?;
                ferry_azure::adapter::serve(root, listener).await
            }
            None => {
                let port = env_port("PORT").unwrap_or(8080);
                let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
                    .await
                    .map_err(|e| format!("listening on 0.0.0.0:{port}: {e}"))?;
                ferry_gcp::adapter::serve(root, listener).await
            }
        }
    });
    if let Err(e) = result {
        eprintln!("ferry-adapter: {e}");
        std::process::exit(1);
    }
}
