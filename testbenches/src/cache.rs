//! The compile cache: `<build_dir>/obj_<tool>/<hash>/` holds a compiled testbench, keyed by a
//! hash of everything that goes into it.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{io_err, HarnessError, Rtl};

/// `<build_dir>/obj_<tool>`.
pub(crate) fn tool_dir(build_dir: &Path, rtl: Rtl) -> PathBuf {
    build_dir.join(format!("obj_{}", rtl.name()))
}

/// 64-bit FNV-1a with length-prefixed fields, so the key is stable across Rust versions.
pub struct Key(u64);

impl Default for Key {
    fn default() -> Self {
        Self::new()
    }
}

impl Key {
    /// The empty key.
    pub fn new() -> Self {
        Key(0xcbf2_9ce4_8422_2325)
    }

    /// Adds one field.
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// Adds the design's Verilog files (names and contents).
    pub(crate) fn add_files(
        &mut self,
        build_dir: &Path,
        files: &[String],
    ) -> Result<&mut Self, HarnessError> {
        for f in files {
            let path = build_dir.join(f);
            let text = fs::read(&path).map_err(io_err("reading", &path))?;
            self.add(f.as_bytes()).add(&text);
        }
        Ok(self)
    }

    /// The key as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Returns the cache directory holding `artifact` for `key`, building it with `build` (which
/// gets an empty staging directory) if it is missing, and the seconds spent building.
pub(crate) fn cached(
    build_dir: &Path,
    rtl: Rtl,
    key: &Key,
    artifact: &str,
    build: impl FnOnce(&Path) -> Result<(), HarnessError>,
) -> Result<(PathBuf, f64), HarnessError> {
    let dir = tool_dir(build_dir, rtl);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let lock_path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("opening", &lock_path))?;
    // Held until `lock` drops: one build at a time per tool and build directory, across threads
    // and processes; whoever waited finds the finished build.
    lock.lock().map_err(io_err("locking", &lock_path))?;
    let hash = key.hex();
    let done = dir.join(&hash);
    if done.join(artifact).is_file() {
        return Ok((done, 0.0));
    }
    let staging = dir.join(format!("staging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_err("creating", &staging))?;
    let start = Instant::now();
    build(&staging)?;
    let seconds = start.elapsed().as_secs_f64();
    if !staging.join(artifact).is_file() {
        return Err(HarnessError::Compile {
            tool: rtl,
            detail: format!("{} was not produced", staging.join(artifact).display()),
        });
    }
    let _ = fs::remove_dir_all(&done);
    fs::rename(&staging, &done).map_err(io_err("renaming build to", &done))?;
    prune(&dir, &hash);
    Ok((done, seconds))
}

/// Removes other builds, stale staging directories and run directories of dead processes.
fn prune(dir: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            name != keep
        } else if let Some(rest) = name.strip_prefix("run-").or(name.strip_prefix("staging-")) {
            let pid = rest.split('-').next().unwrap_or("");
            pid.parse::<u32>().is_ok_and(|p| p != std::process::id())
                && Path::new("/proc/self").exists()
                && !Path::new("/proc").join(pid).exists()
        } else {
            false
        };
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}
