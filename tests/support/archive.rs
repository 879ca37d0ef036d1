//! Helpers for the runtime tests: a small HTTP server on 127.0.0.1, temp folders,
//! and release-shaped archives built in memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "mcpctl-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Serves fixed bodies by path on 127.0.0.1 until dropped; counts requests per path.
pub struct Server {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    delay: Arc<Mutex<Duration>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, h, d, s) = (routes.clone(), hits.clone(), delay.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
                let path = req.url().to_string();
                *h.lock().unwrap().entry(path.clone()).or_default() += 1;
                let route = r.lock().unwrap().get(&path).cloned();
                let wait = *d.lock().unwrap();
                // Answer each request on its own thread so concurrent clients overlap.
                std::thread::spawn(move || {
                    std::thread::sleep(wait);
                    let _ = match route {
                        Some(rt) => req.respond(tiny_http::Response::from_data(rt.body).with_status_code(rt.status)),
                        None => {
                            req.respond(tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404))
                        }
                    };
                });
            }
        });
        Server { port, routes, hits, delay, stop, thread: Some(thread) }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn put(&self, path: &str, status: u16, body: Vec<u8>) {
        self.routes.lock().unwrap().insert(format!("/{}", path.trim_start_matches('/')), Route { status, body });
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.hits.lock().unwrap().get(&format!("/{}", path.trim_start_matches('/'))).unwrap_or(&0)
    }

    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One archive entry: a raw name (written into the header as is, so `../x` and `/x` are possible).
pub enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn header_with_raw_name(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        let bytes = name.as_bytes();
        assert!(bytes.len() < old.name.len());
        old.name[..bytes.len()].copy_from_slice(bytes);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h
}

/// A .tar.gz with exactly these entries.
pub fn targz(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        match e {
            Entry::File(name, data, mode) => {
                let mut h = header_with_raw_name(name, tar::EntryType::Regular, data.len() as u64, *mode);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Entry::Dir(name) => {
                let mut h = header_with_raw_name(name, tar::EntryType::Directory, 0, 0o755);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            Entry::Symlink(name, target) | Entry::HardLink(name, target) => {
                let kind = if matches!(e, Entry::Symlink(..)) { tar::EntryType::Symlink } else { tar::EntryType::Link };
                let mut h = header_with_raw_name(name, kind, 0, 0o777);
                {
                    let old = h.as_old_mut();
                    old.linkname[..target.len()].copy_from_slice(target.as_bytes());
                }
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    let gz = b.into_inner().unwrap();
    gz.finish().unwrap()
}

/// A fake `uv`: a shell script that prints its version, and for `python install` and
/// `tool install PKG` leaves what the real one would under the runtime root.
pub fn fake_uv(version: &str) -> Vec<u8> {
    format!(
        r#"#!/bin/sh
if [ -n "$UV_CACHE_DIR" ]; then mkdir -p "$UV_CACHE_DIR" && echo "$@" >> "$UV_CACHE_DIR/fake-uv.log"; fi
case "$1" in
  --version) echo "uv {version} (fake)";;
  python) mkdir -p "$UV_PYTHON_INSTALL_DIR/cpython-3.13.0-fake" ;;
  tool)
    for last; do :; done
    case "$last" in fail-*) echo "error: no such package $last" >&2; exit 2;; esac
    name=$(echo "$last" | sed 's/[@=<>\[].*//')
    mkdir -p "$UV_TOOL_DIR/$name" && echo "[tool]" > "$UV_TOOL_DIR/$name/uv-receipt.toml" ;;
esac
"#
    )
    .into_bytes()
}

/// A release-shaped archive: `<stem>/uv` and `<stem>/uvx` plus a README.
pub fn release_archive(stem: &str, version: &str) -> Vec<u8> {
    let uv = fake_uv(version);
    let uvx = format!("#!/bin/sh\necho \"uvx {version} (fake) $*\"\n").into_bytes();
    let readme = b"readme".to_vec();
    let (d, u, x, r) = (format!("{stem}/"), format!("{stem}/uv"), format!("{stem}/uvx"), format!("{stem}/README.md"));
    targz(&[Entry::Dir(&d), Entry::File(&u, &uv, 0o755), Entry::File(&x, &uvx, 0o755), Entry::File(&r, &readme, 0o644)])
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
}
