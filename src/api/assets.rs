//! The browser inspector's static files (`www/`: the page, its scripts,
//! and `www/pkg`, the wasm module `scripts/build-inspector.sh` builds) for
//! a native server, held in memory. The Worker does not use this: the
//! Workers assets binding serves `www/` before the Worker runs.
//!
//! A server loads the folder once at start-up ([`Assets::load`]), so a
//! request never touches the file system and no path it names can leave
//! the folder. The files are not embedded in the binary: `www/pkg` is a
//! separate wasm build with other features, which a native `cargo build`
//! cannot produce, and a binary that carried the inspector only when it
//! happened to be built first would differ from build to build.

use std::collections::BTreeMap;

use super::http::{ApiRequest, ApiResponse};

/// The page a folder's path (`/`) serves.
pub const INDEX: &str = "index.html";
/// The wasm module's loader: without it the page cannot work.
pub const MODULE: &str = "pkg/snapkeep.js";

/// Static files by their path relative to the folder (`/`-separated).
#[derive(Debug, Clone, Default)]
pub struct Assets {
    files: BTreeMap<String, Vec<u8>>,
}

impl Assets {
    /// The files given as (relative path, bytes).
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Assets {
        Assets {
            files: files.into_iter().collect(),
        }
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The file a `GET` or `HEAD` of URL path `path` asks for (`/` and
    /// paths ending in `/` mean their `index.html`); `None` for any other
    /// request, which the server answers itself (the API, or a 404).
    pub fn serve(&self, req: &ApiRequest) -> Option<ApiResponse> {
        let head = match req.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => return None,
        };
        let relative = req.path.strip_prefix('/')?;
        let relative = match relative {
            "" => INDEX.to_string(),
            r if r.ends_with('/') => format!("{r}{INDEX}"),
            r => r.to_string(),
        };
        let body = self.files.get(&relative)?;
        let response = ApiResponse::bytes(
            200,
            content_type(&relative),
            if head { Vec::new() } else { body.clone() },
        )
        // Revalidated on every load: a rebuilt inspector is seen at once.
        .with_header("Cache-Control", "no-cache");
        Some(if head {
            response.with_header("Content-Length", &body.len().to_string())
        } else {
            response
        })
    }
}

/// The content type of the kinds of file `www/` holds (`wasm` must be
/// `application/wasm` for the browser to compile it while streaming).
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(feature = "native")]
mod load {
    use std::fs;
    use std::io;
    use std::path::{Path, PathBuf};

    use super::{Assets, INDEX, MODULE};

    /// Why a folder cannot serve the inspector.
    #[derive(Debug, thiserror::Error)]
    pub enum AssetsError {
        #[error("reading the inspector's files in {path}: {source}")]
        Read { path: PathBuf, source: io::Error },
        #[error("{dir} holds no built inspector (no {missing}): run scripts/build-inspector.sh, which writes www/pkg")]
        NotBuilt { dir: PathBuf, missing: &'static str },
    }

    impl Assets {
        /// Every file under `dir` (hidden ones skipped), read now; the
        /// folder must hold the page and the built wasm module.
        pub fn load(dir: &Path) -> Result<Assets, AssetsError> {
            let mut files = Vec::new();
            collect(dir, "", &mut files)?;
            let assets = Assets::from_files(files);
            for missing in [INDEX, MODULE] {
                if !assets.files.contains_key(missing) {
                    return Err(AssetsError::NotBuilt {
                        dir: dir.to_path_buf(),
                        missing,
                    });
                }
            }
            Ok(assets)
        }
    }

    fn collect(
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), AssetsError> {
        let read = |path: &Path, source| AssetsError::Read {
            path: path.to_path_buf(),
            source,
        };
        for entry in fs::read_dir(dir).map_err(|e| read(dir, e))? {
            let entry = entry.map_err(|e| read(dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = format!("{prefix}{name}");
            if path.is_dir() {
                collect(&path, &format!("{relative}/"), out)?;
            } else {
                out.push((relative, fs::read(&path).map_err(|e| read(&path, e))?));
            }
        }
        Ok(())
    }
}

#[cfg(feature = "native")]
pub use load::AssetsError;

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Assets {
        Assets::from_files([
            (INDEX.to_string(), b"<html>".to_vec()),
            ("js/app.js".to_string(), b"app".to_vec()),
            ("pkg/snapkeep_bg.wasm".to_string(), b"\0asm".to_vec()),
        ])
    }

    #[test]
    fn the_root_serves_the_page_and_files_their_types() {
        let a = site();
        let page = a.serve(&ApiRequest::new("GET", "/", None)).unwrap();
        assert_eq!(&page.body[..], b"<html>");
        assert_eq!(
            page.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        let wasm = a
            .serve(&ApiRequest::new("GET", "/pkg/snapkeep_bg.wasm", None))
            .unwrap();
        assert_eq!(wasm.header("Content-Type"), Some("application/wasm"));
        let head = a
            .serve(&ApiRequest::new("HEAD", "/js/app.js", None))
            .unwrap();
        assert!(head.body.is_empty());
        assert_eq!(head.header("Content-Length"), Some("3"));
    }

    #[test]
    fn other_paths_and_methods_are_left_to_the_server() {
        let a = site();
        for (method, path) in [
            ("GET", "/api/repos/x"),
            ("GET", "/js/../index.html"),
            ("GET", "/js/"),
            ("POST", "/"),
            ("GET", "relative"),
        ] {
            assert!(
                a.serve(&ApiRequest::new(method, path, None)).is_none(),
                "{method} {path}"
            );
        }
    }
}
