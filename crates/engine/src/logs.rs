//! Container logs: the monitor appends each line of stdout/stderr as a JSON object with a
//! timestamp (Docker's json-file shape) to container.log, rotating to container.log.1 when it
//! passes a size bound; `logs` reads them back, with --tail and --follow.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Rotate when the current file passes this size (one older file is kept).
pub const MAX_SIZE: u64 = 10 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub time: String,
    pub stream: String,
    pub log: String,
}

pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path, max: u64) -> std::io::Result<Writer> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer { path: path.into(), file, size, max, partial: [Vec::new(), Vec::new()] })
    }

    /// Record output of `stream` (0 = stdout, 1 = stderr); complete lines are written now.
    pub fn write(&mut self, stream: usize, data: &[u8]) -> std::io::Result<()> {
        self.partial[stream].extend_from_slice(data);
        while let Some(i) = self.partial[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=i).collect();
            self.emit(stream, &line)?;
        }
        Ok(())
    }

    /// Write out unterminated output (at exit).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for s in 0..2 {
            if !self.partial[s].is_empty() {
                let line = std::mem::take(&mut self.partial[s]);
                self.emit(s, &line)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, stream: usize, line: &[u8]) -> std::io::Result<()> {
        let rec = Line {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            log: String::from_utf8_lossy(line).into_owned(),
        };
        let mut buf = serde_json::to_vec(&rec).expect("serializes");
        buf.push(b'\n');
        if self.size + buf.len() as u64 > self.max && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        std::fs::rename(&self.path, rotated(&self.path))?;
        self.file = File::options().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// All recorded lines, oldest first (the rotated file, then the current one).
pub fn read_all(path: &Path) -> Vec<Line> {
    let mut out = Vec::new();
    for p in [rotated(path), path.to_path_buf()] {
        if let Ok(f) = File::open(&p) {
            out.extend(BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()));
        }
    }
    out
}

/// Print the last `tail` lines (all if None); with `follow`, keep printing new lines until
/// `running()` turns false.
pub fn print(
    path: &Path,
    tail: Option<usize>,
    follow: bool,
    running: impl Fn() -> bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let lines = read_all(path);
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    for l in &lines[skip..] {
        out.write_all(l.log.as_bytes())?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut f = File::open(path)?;
    let mut pos = f.seek(SeekFrom::End(0))?;
    loop {
        let alive = running();
        let Ok(meta) = std::fs::metadata(path) else {
            // The container was removed while we followed it.
            return Ok(());
        };
        let len = meta.len();
        if len < pos {
            // Rotated: start over on the new file.
            f = File::open(path)?;
            pos = 0;
        }
        f.seek(SeekFrom::Start(pos))?;
        let mut r = BufReader::new(&f);
        let mut buf = String::new();
        while r.read_line(&mut buf)? > 0 {
            if !buf.ends_with('\n') {
                break;
            }
            pos += buf.len() as u64;
            if let Ok(l) = serde_json::from_str::<Line>(&buf) {
                out.write_all(l.log.as_bytes())?;
            }
            buf.clear();
        }
        out.flush()?;
        if !alive {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_rotation_and_tail() {
        let dir = std::env::temp_dir().join(format!("cnd-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("container.log");
        let mut w = Writer::open(&p, 400).unwrap();
        w.write(0, b"one\ntw").unwrap();
        w.write(1, b"err\n").unwrap();
        w.write(0, b"o\n").unwrap();
        for i in 0..10 {
            w.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write(0, b"no newline").unwrap();
        w.flush().unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() <= 400);
        assert!(rotated(&p).exists(), "rotated");
        let all = read_all(&p);
        assert_eq!(all.last().unwrap().log, "no newline");
        let mut out = Vec::new();
        print(&p, Some(2), false, || false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "line 9\nno newline");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
