//! Progress reporting. Builders call a [`Progress`]; the caller decides how it looks: an
//! `indicatif` bar on a terminal ([`Bar`]), plain lines in a log ([`Lines`]), or nothing.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// What a stage counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Packages, files.
    Items,
    Bytes,
}

/// Receives the progress of one import or build. Stages follow each other ("downloading",
/// "extracting", ...); within a stage, `advance` reports how far it got.
pub trait Progress {
    /// A new stage begins; `total` is its length when known (it may be an estimate: `done` can
    /// stop short of it, or pass it).
    fn stage(&mut self, name: &str, total: Option<u64>, unit: Unit);
    /// `done` units of the stage are done; `item` is the one just handled (a package, a path).
    fn advance(&mut self, done: u64, item: &str);
    /// A line worth showing as is (the builder's own messages and warnings).
    fn message(&mut self, line: &str);
    /// The operation ended, successfully or not; called once, last.
    fn finish(&mut self);
}

/// Shows nothing.
#[derive(Default)]
pub struct Silent;

impl Progress for Silent {
    fn stage(&mut self, _: &str, _: Option<u64>, _: Unit) {}
    fn advance(&mut self, _: u64, _: &str) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

/// A bar on stderr when it is a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::default())
    } else {
        Box::new(Lines::new(std::io::stderr()))
    }
}

/// `indicatif` bars on stderr, one per stage; finished stages stay on screen. A message ends
/// the current bar where it stands and prints below it, so the screen reads in order; the stage
/// then goes on in a new bar.
#[derive(Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
    stage: Option<(String, Option<u64>, Unit)>,
    done: u64,
}

impl Progress for Bar {
    fn stage(&mut self, name: &str, total: Option<u64>, unit: Unit) {
        self.freeze(true);
        self.stage = Some((name.to_string(), total, unit));
        self.done = 0;
        self.bar = self.new_bar();
    }

    fn advance(&mut self, done: u64, item: &str) {
        self.done = done;
        if self.bar.is_none() {
            self.bar = self.new_bar();
        }
        if let Some(b) = &self.bar {
            if b.length().is_some_and(|len| done > len) {
                b.set_length(done);
            }
            b.set_position(done);
            b.set_message(item.to_string());
        }
    }

    fn message(&mut self, line: &str) {
        self.freeze(false);
        eprintln!("{line}");
    }

    fn finish(&mut self) {
        self.freeze(true);
        self.stage = None;
    }
}

impl Bar {
    fn new_bar(&self) -> Option<ProgressBar> {
        let (name, total, unit) = self.stage.as_ref()?;
        let (bar, template) = match (total, unit) {
            (Some(t), Unit::Items) => (ProgressBar::new(*t), "{prefix:>12.bold} [{bar:30}] {pos}/{len} {wide_msg}"),
            (Some(t), Unit::Bytes) => (ProgressBar::new(*t), "{prefix:>12.bold} [{bar:30}] {bytes}/{total_bytes} {wide_msg}"),
            (None, Unit::Items) => (ProgressBar::new_spinner(), "{prefix:>12.bold} {spinner} {pos} {wide_msg}"),
            (None, Unit::Bytes) => (ProgressBar::new_spinner(), "{prefix:>12.bold} {spinner} {bytes} {wide_msg}"),
        };
        let style = ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(name.clone());
        bar.set_position(self.done);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(bar)
    }

    /// Leave the current bar on screen; `complete` fills it (a finished stage whose length
    /// was an estimate).
    fn freeze(&mut self, complete: bool) {
        if let Some(b) = self.bar.take() {
            if let (true, Some(len)) = (complete, b.length()) {
                b.set_position(len.max(self.done));
            }
            b.set_message("");
            b.finish();
        }
    }
}

/// Plain lines for logs: a line when a stage starts and at every tenth of it (or every
/// `UNKNOWN_EVERY` items when its length is unknown), plus the messages.
pub struct Lines<W: Write> {
    out: W,
    stage: String,
    total: Option<u64>,
    unit: Unit,
    shown: u64,
}

const UNKNOWN_EVERY: u64 = 25;
const UNKNOWN_EVERY_BYTES: u64 = 64 << 20;

impl<W: Write> Lines<W> {
    pub fn new(out: W) -> Self {
        Lines { out, stage: String::new(), total: None, unit: Unit::Items, shown: 0 }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Which step `done` falls in: tenths of a known total, else fixed chunks.
    fn step(&self, done: u64) -> u64 {
        match (self.total, self.unit) {
            (Some(t), _) if t > 0 => done.min(t) * 10 / t,
            (_, Unit::Bytes) => done / UNKNOWN_EVERY_BYTES,
            _ => done / UNKNOWN_EVERY,
        }
    }

    fn amount(&self, n: u64) -> String {
        match self.unit {
            Unit::Items => n.to_string(),
            Unit::Bytes => format!("{:.1} MB", n as f64 / 1e6),
        }
    }
}

impl<W: Write> Progress for Lines<W> {
    fn stage(&mut self, name: &str, total: Option<u64>, unit: Unit) {
        (self.stage, self.total, self.unit, self.shown) = (name.to_string(), total, unit, 0);
        let _ = match total {
            Some(t) => writeln!(self.out, "{name} ({})", self.amount(t)),
            None => writeln!(self.out, "{name}"),
        };
    }

    fn advance(&mut self, done: u64, item: &str) {
        let step = self.step(done);
        if step <= self.shown {
            return;
        }
        self.shown = step;
        let _ = match self.total {
            Some(t) => writeln!(
                self.out,
                "{}: {}% ({}/{}) {item}",
                self.stage,
                done.min(t) * 100 / t.max(1),
                self.amount(done),
                self.amount(t)
            ),
            None => writeln!(self.out, "{}: {} {item}", self.stage, self.amount(done)),
        };
    }

    fn message(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_print_tenths() {
        let mut p = Lines::new(Vec::new());
        p.stage("extracting", Some(20), Unit::Items);
        for i in 1..=20 {
            p.advance(i, &format!("pkg{i}"));
        }
        p.message("I: done");
        let out = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines[0], "extracting (20)");
        assert_eq!(lines[1], "extracting: 10% (2/20) pkg2");
        assert_eq!(lines[10], "extracting: 100% (20/20) pkg20");
        assert_eq!(lines[11], "I: done");
        assert_eq!(lines.len(), 12);
    }

    #[test]
    fn lines_with_unknown_total() {
        let mut p = Lines::new(Vec::new());
        p.stage("downloading", None, Unit::Items);
        for i in 1..=60 {
            p.advance(i, "x");
        }
        let out = String::from_utf8(p.into_inner()).unwrap();
        assert_eq!(out, "downloading\ndownloading: 25 x\ndownloading: 50 x\n");
    }
}
