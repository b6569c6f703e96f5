//! A tiny tracing subscriber that records `conductor::explain` events as (path, value) pairs
//! (the step, e.g. "mkdir", when there is no value), so a test can check what `--explain`
//! would show.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Default)]
struct Fields {
    path: String,
    value: String,
    step: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.set(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_string());
    }
}

impl Fields {
    fn set(&mut self, field: &Field, v: String) {
        match field.name() {
            "path" => self.path = v,
            "value" => self.value = v,
            "step" => self.step = v,
            _ => {}
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == "conductor::explain"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut f = Fields::default();
        e.record(&mut f);
        let value = if f.value.is_empty() { f.step } else { f.value };
        self.events.lock().unwrap().push((f.path, value));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
