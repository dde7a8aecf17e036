//! What natter-local measures while it runs: the EMF lines the functions write (AWS calls and capacity per function
//! and kind), and per function its instances, init times, invocation durations and CPU time. Served as JSON at
//! `GET /_natter/stats` for natter-loadgen and `make bench`.

use natter_core::meter::Sample;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

/// Sums of the EMF samples, per (function, kind).
#[derive(Default)]
pub struct Collector {
    samples: Mutex<BTreeMap<(String, String), Sample>>,
}

impl Collector {
    /// Keeps the line if it is an EMF sample; `true` if it was (and need not be printed).
    pub fn offer(&self, line: &str) -> bool {
        let Some(sample) = Sample::parse(line) else {
            return false;
        };
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .entry((sample.function.clone(), sample.kind.clone()))
            .or_default()
            .add(&sample);
        if let Some(s) = samples.get_mut(&(sample.function.clone(), sample.kind.clone())) {
            s.function = sample.function;
            s.kind = sample.kind;
        }
        true
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A log sink that hands EMF lines to `collector` and the rest to `inner` (printed unless `show_metrics`).
pub fn collecting(
    collector: Arc<Collector>,
    inner: crate::runtime::LogSink,
    show_metrics: bool,
) -> crate::runtime::LogSink {
    Arc::new(move |function, line| {
        if !collector.offer(line) || show_metrics {
            inner(function, line);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_are_summed_per_function_and_kind() {
        let c = Collector::default();
        let line = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"Function":"F","Kind":"send.direct","Invocations":1,"Records":1,"DurationMs":2.0,"AwsBusyMs":1.0,"ReadUnits":1.5,"WriteUnits":4,"Calls.DynamoDB.PutItem":2}"#;
        assert!(c.offer(line));
        assert!(c.offer(line));
        assert!(!c.offer("INFO sent"));
        let s = &c.samples()[0];
        assert_eq!((s.invocations, s.calls["DynamoDB.PutItem"], s.write_units), (2, 4, 8.0));
    }
}
