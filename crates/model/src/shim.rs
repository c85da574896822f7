//! Temporary stand-ins until strata-train's callbacks/history/progress land.
#![allow(missing_docs, dead_code)]
pub mod callbacks {
    #[derive(Clone, Debug, Default)]
    pub struct Logs(pub Vec<(String, f64)>);
    impl Logs {
        pub fn new() -> Logs { Logs::default() }
        pub fn insert(&mut self, k: &str, v: f64) {
            if let Some(e) = self.0.iter_mut().find(|(n, _)| n == k) { e.1 = v } else { self.0.push((k.to_string(), v)) }
        }
        pub fn get(&self, k: &str) -> Option<f64> { self.0.iter().find(|(n, _)| n == k).map(|e| e.1) }
        pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> { self.0.iter().map(|(k, v)| (k.as_str(), *v)) }
    }
    pub trait TrainContext {
        fn stop_training(&mut self);
        fn learning_rate(&self) -> f64;
        fn set_learning_rate(&mut self, lr: f64) -> strata_train::Result<()>;
        fn save_model(&mut self, path: &std::path::Path) -> strata_train::Result<()>;
        fn save_weights(&mut self, path: &std::path::Path) -> strata_train::Result<()>;
        fn snapshot_weights(&self) -> Box<dyn std::any::Any + Send>;
        fn restore_weights(&mut self, snapshot: &(dyn std::any::Any + Send)) -> strata_train::Result<()>;
    }
    pub trait Callback: Send {
        fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> strata_train::Result<()> { Ok(()) }
        fn on_epoch_begin(&mut self, _e: usize, _ctx: &mut dyn TrainContext) -> strata_train::Result<()> { Ok(()) }
        fn on_train_batch_end(&mut self, _b: usize, _l: &Logs, _ctx: &mut dyn TrainContext) -> strata_train::Result<()> { Ok(()) }
        fn on_epoch_end(&mut self, _e: usize, _l: &mut Logs, _ctx: &mut dyn TrainContext) -> strata_train::Result<()> { Ok(()) }
        fn on_train_end(&mut self, _l: &Logs, _ctx: &mut dyn TrainContext) -> strata_train::Result<()> { Ok(()) }
    }
}
pub mod history {
    #[derive(Clone, Debug, Default)]
    pub struct History { pub epoch: Vec<usize>, pub history: Vec<(String, Vec<f64>)> }
    impl History {
        pub fn record(&mut self, epoch: usize, logs: &super::callbacks::Logs) {
            self.epoch.push(epoch);
            for (k, v) in logs.iter() {
                match self.history.iter_mut().find(|(n, _)| n == k) { Some(e) => e.1.push(v), None => self.history.push((k.to_string(), vec![v])) }
            }
        }
        pub fn get(&self, k: &str) -> Option<&[f64]> { self.history.iter().find(|(n, _)| n == k).map(|e| e.1.as_slice()) }
    }
}
pub mod progress {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Verbose { Auto, Silent, Bar, Line }
    impl Verbose { pub fn resolve(self) -> Verbose { if self == Verbose::Auto { Verbose::Line } else { self } } }
    pub struct Progbar { steps: Option<usize>, v: Verbose, start: std::time::Instant }
    impl Progbar {
        pub fn new(steps: Option<usize>, v: Verbose) -> Progbar { Progbar { steps, v, start: std::time::Instant::now() } }
        pub fn epoch_header(&mut self, w: &mut dyn std::io::Write, e: usize, n: usize) -> std::io::Result<()> { if self.v != Verbose::Silent { writeln!(w, "Epoch {}/{}", e + 1, n)?; } Ok(()) }
        pub fn update(&mut self, _w: &mut dyn std::io::Write, _s: usize, _l: &super::callbacks::Logs) -> std::io::Result<()> { Ok(()) }
        pub fn finish(&mut self, w: &mut dyn std::io::Write, l: &super::callbacks::Logs) -> std::io::Result<()> {
            if self.v == Verbose::Silent { return Ok(()) }
            let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
            writeln!(w, "{}/{} - {:.0}s - {}", self.steps.unwrap_or(0), self.steps.unwrap_or(0), self.start.elapsed().as_secs_f64(), parts.join(" - "))
        }
    }
}
