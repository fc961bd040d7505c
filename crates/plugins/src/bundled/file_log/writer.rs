//! The file writer behind file-log: append-only, reopened on request, rotated by size and kept
//! under a total size.

use crate::bundled::log_sink::Deliver;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bumped by SIGUSR1: every file-log writer reopens its file before its next write.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Makes every file-log writer reopen its file (the node calls it on SIGUSR1).
pub fn request_reopen() {
    REOPEN_GENERATION.fetch_add(1, Relaxed);
}

/// Changes each time log files must be reopened (other writers, such as the access log, follow
/// it too).
pub fn reopen_generation() -> u64 {
    REOPEN_GENERATION.load(Relaxed)
}

pub(super) struct FileWriter {
    path: PathBuf,
    reopen_each: bool,
    rotate_size: Option<u64>,
    max_total_size: Option<u64>,
    file: Option<File>,
    /// The open file's size, as far as this writer knows.
    size: u64,
    generation: u64,
}

impl FileWriter {
    pub fn new(
        path: PathBuf,
        reopen_each: bool,
        rotate_size: Option<u64>,
        max_total_size: Option<u64>,
    ) -> Self {
        FileWriter {
            path,
            reopen_each,
            rotate_size,
            max_total_size,
            file: None,
            size: 0,
            generation: REOPEN_GENERATION.load(Relaxed),
        }
    }

    fn open(&mut self) -> Result<&mut File, String> {
        let generation = REOPEN_GENERATION.load(Relaxed);
        if self.reopen_each || generation != self.generation {
            self.file = None;
            self.generation = generation;
        }
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(&self.path)
                .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
            self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(file);
        }
        self.file.as_mut().ok_or_else(|| "no file".to_string())
    }

    /// `<path>.<n>`.
    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// The rotated copies that exist, oldest last.
    fn rotated_files(&self) -> Vec<PathBuf> {
        (1..)
            .map(|n| self.rotated(n))
            .take_while(|p| p.exists())
            .collect()
    }

    /// Moves the current file to `.1` (shifting older copies up) and starts a new one.
    fn rotate(&mut self) -> Result<(), String> {
        self.file = None;
        let existing = self.rotated_files();
        for (i, p) in existing.iter().enumerate().rev() {
            rename(p, &self.rotated(i as u32 + 2))?;
        }
        rename(&self.path, &self.rotated(1))?;
        self.size = 0;
        Ok(())
    }

    /// Deletes the oldest copies until `incoming` more bytes fit in `max_total_size`; false when
    /// they cannot fit even then.
    fn make_room(&mut self, max: u64, incoming: u64) -> bool {
        let mut rotated: Vec<(PathBuf, u64)> = self
            .rotated_files()
            .into_iter()
            .map(|p| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, len)
            })
            .collect();
        let mut total = self.size + rotated.iter().map(|(_, l)| l).sum::<u64>();
        while total + incoming > max {
            let Some((oldest, len)) = rotated.pop() else {
                return false;
            };
            if std::fs::remove_file(&oldest).is_err() {
                return false;
            }
            total -= len;
        }
        true
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), String> {
        let len = line.len() as u64;
        self.open()?;
        if let Some(limit) = self.rotate_size
            && self.size > 0
            && self.size + len > limit
        {
            self.rotate()?;
            self.open()?;
        }
        if let Some(max) = self.max_total_size
            && !self.make_room(max, len)
        {
            return Err(format!(
                "{} is at max_total_size ({max} bytes)",
                self.path.display()
            ));
        }
        let path = self.path.display().to_string();
        let file = self.open()?;
        match file.write_all(line) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                // Whatever part was written counts; reopen next time to learn the real size.
                self.file = None;
                Err(format!("cannot write to {path}: {e}"))
            }
        }
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to)
        .map_err(|e| format!("cannot rotate {} to {}: {e}", from.display(), to.display()))
}

impl Deliver for FileWriter {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        for line in batch {
            self.write_line(line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sb-file-log-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn rotates_by_size_and_stays_under_the_total() {
        let d = dir("rotate");
        let path = d.join("a.log");
        let mut w = FileWriter::new(path.clone(), false, Some(20), Some(45));
        for i in 0..10 {
            w.deliver(&[format!("line-{i:04}\n").into_bytes()]).unwrap();
        }
        // 10-byte lines: two per file, and at most 45 bytes in all.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line-0008\nline-0009\n"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("a.log.1")).unwrap(),
            "line-0006\nline-0007\n"
        );
        assert!(!d.join("a.log.2").exists());
        // A line larger than the total is refused.
        assert!(w.deliver(&[vec![b'x'; 50]]).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reopens_after_a_move() {
        let d = dir("reopen");
        let path = d.join("b.log");
        let mut w = FileWriter::new(path.clone(), false, None, None);
        w.deliver(&[b"one\n".to_vec()]).unwrap();
        std::fs::rename(&path, d.join("b.log.old")).unwrap();
        w.deliver(&[b"two\n".to_vec()]).unwrap();
        request_reopen();
        w.deliver(&[b"three\n".to_vec()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("b.log.old")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn full_disk_is_an_error_not_a_panic() {
        let mut w = FileWriter::new("/dev/full".into(), false, None, None);
        assert!(w.deliver(&[b"x\n".to_vec()]).is_err());
        assert!(w.deliver(&[b"y\n".to_vec()]).is_err());
    }
}
