//! Helpers for the runtime tests: a small HTTP server on 127.0.0.1, temp folders,
//! and release-shaped archives built in memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
/// A few lines of std: a thread per connection, one request per connection (answered with
/// `Connection: close`), the request line and headers read and any body left unread.
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, h, d, s) = (routes.clone(), hits.clone(), delay.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break; // woken by Drop
                }
                let Ok(conn) = conn else { continue };
                let (r, h, d) = (r.clone(), h.clone(), d.clone());
                // Each connection on its own thread so concurrent clients overlap.
                std::thread::spawn(move || answer(conn, &r, &h, &d));
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

/// One request: its target counted, the route's answer (404 without one) after the delay.
fn answer(
    conn: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    hits: &Mutex<HashMap<String, usize>>,
    delay: &Mutex<Duration>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return };
    // The headers, up to the empty line (bounded: 200 lines).
    for _ in 0..200 {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
    }
    *hits.lock().unwrap().entry(target.to_string()).or_default() += 1;
    let route = routes.lock().unwrap().get(target).cloned();
    std::thread::sleep(*delay.lock().unwrap());
    let Route { status, body } = route.unwrap_or(Route { status: 404, body: b"not found".to_vec() });
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(&body);
    }
    let mut w = &conn;
    let _ = w.write_all(&out);
    // Close without losing the answer: stop sending, then read what the client still sends
    // (a body we did not read) for at most a second, so the close is not a reset.
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    while let Ok(n) = (&conn).read(&mut sink) {
        if n == 0 || Instant::now() > until {
            break;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
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
