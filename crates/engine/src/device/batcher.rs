//! Batching, in this one place: which queued jobs ride together in one device call.
//!
//! Batches are formed on the device thread when the device is free, as TEI's batching task
//! does: a batch formed earlier, while the device is busy, would close before the jobs that
//! arrive during that run could join it.

use super::Worker;
use crate::queue::{Job, Kind};
use std::collections::VecDeque;
use std::time::Instant;

impl Worker {
    pub(super) fn max_batch(&self, kind: Kind) -> usize {
        let model_max = self.info.as_ref().map_or(1, |i| match kind {
            Kind::Image => i.max_image_batch,
            Kind::Text => i.max_text_batch,
        });
        match kind {
            Kind::Image => model_max.min(self.cfg.max_batch_size).max(1),
            Kind::Text => model_max.max(1),
        }
    }

    /// Gathers jobs of the first job's kind until the batch is full. A partial batch waits up to
    /// `max_wait` for company only under load; an idle device runs a lone request at once.
    pub(super) fn gather(&mut self, first: Job, kind: Kind) -> Vec<Job> {
        let max = self.max_batch(kind);
        let mut count = first.len();
        let mut jobs = vec![first];
        let mut others = VecDeque::new();
        while count < max {
            match self.pending.pop_front() {
                Some(j) if j.kind() == Some(kind) => {
                    count += j.len();
                    jobs.push(j);
                }
                Some(j) => others.push_back(j),
                None => break,
            }
        }
        let mut deadline: Option<Instant> = None;
        while count < max {
            let next = match self.rx.try_recv() {
                Ok(j) => Some(j),
                Err(_) => {
                    let under_load = self.last_batch_jobs > 1 || jobs.len() > 1;
                    if !under_load || self.cfg.max_wait.is_zero() {
                        break;
                    }
                    let d = *deadline.get_or_insert_with(|| Instant::now() + self.cfg.max_wait);
                    match self
                        .rx
                        .recv_timeout(d.saturating_duration_since(Instant::now()))
                    {
                        Ok(j) => Some(j),
                        Err(_) => break,
                    }
                }
            };
            if let Some(j) = next {
                if j.kind() == Some(kind) {
                    count += j.len();
                    jobs.push(j);
                } else {
                    others.push_back(j);
                }
            }
        }
        // Jobs of the other kind keep their order ahead of anything still in the channel.
        while let Some(j) = others.pop_back() {
            self.pending.push_front(j);
        }
        jobs
    }
}
