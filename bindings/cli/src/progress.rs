//! Download progress on stderr: a bar per file being fetched and one for the total, drawn by
//! indicatif from the Hub client's transformers.js-shaped events. Files found in the cache draw
//! nothing. Without a terminal on stderr nothing is drawn.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use webformers::hub::{ProgressEvent, ProgressFn, ProgressStatus};

pub struct Bars(Rc<Inner>);

struct Inner {
    multi: MultiProgress,
    files: RefCell<HashMap<String, ProgressBar>>,
    total: RefCell<Option<ProgressBar>>,
    downloaded: Cell<u64>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

impl Bars {
    pub fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        Bars(Rc::new(Inner { multi, files: RefCell::default(), total: RefCell::default(), downloaded: Cell::new(0) }))
    }

    pub fn callback(&self) -> ProgressFn {
        let inner = self.0.clone();
        Arc::new(move |e: &ProgressEvent| inner.on(e))
    }

    /// Bytes that came from the network.
    pub fn downloaded(&self) -> u64 {
        self.0.downloaded.get()
    }

    pub fn finish(&self) {
        for bar in self.0.files.borrow().values() {
            bar.finish_and_clear();
        }
        if let Some(t) = self.0.total.borrow().as_ref() {
            t.finish_and_clear();
        }
    }
}

impl Inner {
    fn on(&self, e: &ProgressEvent) {
        match e.status {
            ProgressStatus::Download => {
                let bar = self.multi.add(ProgressBar::new(e.total));
                bar.set_style(style("{prefix:>28} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}"));
                bar.set_prefix(shorten(&e.file, 28));
                self.files.borrow_mut().insert(e.file.clone(), bar);
                let mut total = self.total.borrow_mut();
                if total.is_none() {
                    let bar = self.multi.insert(0, ProgressBar::new(0));
                    bar.set_style(style("{prefix:>28} [{bar:30}] {bytes:>10}/{total_bytes:<10} eta {eta}"));
                    bar.set_prefix(shorten(&e.name, 28));
                    *total = Some(bar);
                }
            }
            ProgressStatus::Progress => {
                if let Some(bar) = self.files.borrow().get(&e.file) {
                    self.downloaded.set(self.downloaded.get() + e.loaded.saturating_sub(bar.position()));
                    bar.set_position(e.loaded);
                }
            }
            ProgressStatus::Total => {
                if let Some(t) = self.total.borrow().as_ref() {
                    t.set_length(e.total);
                    t.set_position(e.loaded);
                }
            }
            ProgressStatus::Done => {
                if let Some(bar) = self.files.borrow_mut().remove(&e.file) {
                    bar.finish_and_clear();
                }
            }
            ProgressStatus::Initiate | ProgressStatus::Ready => {}
        }
    }
}

fn shorten(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n { s.to_string() } else { ["…".to_string(), s.chars().skip(count - n + 1).collect()].concat() }
}

/// A task's progress through its input (`Event::Progress`) on stderr: a bar when stderr is a
/// terminal, else (when asked with `--progress`) one line per update.
pub struct TaskBar {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl TaskBar {
    /// `forced`: report even when stderr is not a terminal.
    pub fn new(forced: bool) -> TaskBar {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        TaskBar { bar: None, lines: forced && !terminal }.with_bar(terminal)
    }

    fn with_bar(mut self, terminal: bool) -> TaskBar {
        if terminal {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(style("{msg:>16} [{bar:30}] {percent:>3}% eta {eta}"));
            self.bar = Some(bar);
        }
        self
    }

    /// `done` of `total` `unit`s (seconds of audio are counted in milliseconds).
    pub fn update(&self, done: f64, total: f64, unit: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length((total * 1000.0) as u64);
            bar.set_position((done * 1000.0) as u64);
            bar.set_message(format!("{done:.1}/{total:.1} {unit}"));
        } else if self.lines {
            eprintln!("progress: {done:.1}/{total:.1} {unit}");
        }
    }

    /// Runs `f` (printing to stdout) with the bar hidden, so the two do not garble each other.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
