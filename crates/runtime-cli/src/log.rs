//! runc-style logs: `--log FILE --log-format json` writes one {"level","msg","time"} object per
//! line (containerd reads errors from it); text writes logrus-style `time=.. level=.. msg=..`.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
    max: Level,
}

#[derive(Default)]
struct Msg(String);

impl Visit for Msg {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for Sink {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() > self.max {
            return;
        }
        let mut m = Msg::default();
        event.record(&mut m);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let level = if level == "warn" { "warning".to_string() } else { level };
        let line = render(self.format, &level, m.0.trim());
        let _ = self.out.lock().map(|mut o| o.write_all(line.as_bytes()));
    }
}

/// One log line in the chosen format.
pub fn render(format: Format, level: &str, msg: &str) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match format {
        Format::Json => format!("{}\n", serde_json::json!({"level": level, "msg": msg, "time": time})),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// Install the subscriber. Without --log, warnings go to stderr.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> std::io::Result<Option<(File, Format)>> {
    let max = if debug { Level::DEBUG } else { Level::WARN };
    let (out, file): (Box<dyn Write + Send>, _) = match path {
        Some(p) => {
            let f = File::options().create(true).append(true).open(p)?;
            (Box::new(f.try_clone()?), Some((f, format)))
        }
        None => (Box::new(std::io::stderr()), None),
    };
    let sink = Sink { out: Mutex::new(out), format, max };
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(sink));
    Ok(file)
}
