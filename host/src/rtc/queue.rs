//! A channel's FIFO send queue and the cancellation token its jobs carry.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::policy::SegmentRef;

/// A one-way cancellation flag that can be awaited.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// Sets the flag and wakes every waiter. `true` for the call that set it.
    pub(crate) fn cancel(&self) -> bool {
        let first = !self.flag.swap(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        first
    }

    /// Whether [`Self::cancel`] was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Completes once cancelled.
    pub(crate) async fn cancelled(&self) {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// One segment to send and its cancellation token.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) seg: SegmentRef,
    pub(crate) cancel: Arc<Cancel>,
}

/// What [`SendQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Appended.
    Queued,
    /// The same segment is already queued or being sent.
    Duplicate,
    /// The queue is full.
    Full,
}

/// Segments waiting for one channel, in order, and the one being sent.
#[derive(Debug)]
pub(crate) struct SendQueue {
    pending: VecDeque<Job>,
    in_flight: Option<Job>,
    capacity: usize,
}

impl SendQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            pending: VecDeque::new(),
            in_flight: None,
            capacity,
        }
    }

    /// Appends `seg` unless it is already queued or in flight (and not cancelled), or the
    /// queue is full.
    pub(crate) fn push(&mut self, seg: SegmentRef) -> Push {
        let live = self.in_flight.iter().filter(|j| !j.cancel.is_cancelled());
        let known = live.chain(&self.pending).any(|j| j.seg == seg);
        if known {
            Push::Duplicate
        } else if self.pending.len() >= self.capacity {
            Push::Full
        } else {
            self.pending.push_back(Job {
                seg,
                cancel: Arc::default(),
            });
            Push::Queued
        }
    }

    /// Takes the next job and marks it in flight.
    pub(crate) fn start_next(&mut self) -> Option<Job> {
        let job = self.pending.pop_front()?;
        self.in_flight = Some(job.clone());
        Some(job)
    }

    /// Clears the in-flight mark if it is still `job`.
    pub(crate) fn finish(&mut self, job: &Job) {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|j| Arc::ptr_eq(&j.cancel, &job.cancel))
        {
            self.in_flight = None;
        }
    }

    /// Removes `seg` from the queue and cancels it if in flight. `true` if anything matched.
    pub(crate) fn quit(&mut self, seg: &SegmentRef) -> bool {
        let before = self.pending.len();
        self.pending.retain(|j| j.seg != *seg);
        let mut matched = self.pending.len() != before;
        if let Some(job) = self.in_flight.as_ref().filter(|j| j.seg == *seg) {
            job.cancel.cancel();
            matched = true;
        }
        matched
    }

    /// Empties the queue and cancels the job in flight. Returns how many jobs were affected.
    pub(crate) fn quit_all(&mut self) -> usize {
        let mut n = self.pending.len();
        self.pending.clear();
        if let Some(job) = &self.in_flight {
            job.cancel.cancel();
            n += 1;
        }
        n
    }

    /// Waiting segments and the one in flight, as `VID:ITAG|N`.
    pub(crate) fn describe(&self) -> (Vec<String>, Option<String>) {
        let queued = self.pending.iter().map(|j| seg_name(&j.seg)).collect();
        (queued, self.in_flight.as_ref().map(|j| seg_name(&j.seg)))
    }
}

/// `VID:ITAG|N`, as in chunk headers and logs.
pub(crate) fn seg_name(seg: &SegmentRef) -> String {
    format!("{}:{}|{}", seg.vid, seg.itag, seg.index)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn seg(index: u32) -> SegmentRef {
        SegmentRef {
            vid: "abcdefghijk".into(),
            itag: 251,
            index,
        }
    }

    #[test]
    fn fifo_with_dedupe_and_capacity() {
        let mut q = SendQueue::new(2);
        assert_eq!(q.push(seg(1)), Push::Queued);
        assert_eq!(q.push(seg(1)), Push::Duplicate);
        assert_eq!(q.push(seg(2)), Push::Queued);
        assert_eq!(q.push(seg(3)), Push::Full);
        let job = q.start_next().unwrap();
        assert_eq!(job.seg, seg(1));
        // In flight counts as a duplicate too.
        assert_eq!(q.push(seg(1)), Push::Duplicate);
        assert_eq!(q.push(seg(3)), Push::Queued);
        assert_eq!(
            q.describe(),
            (
                vec![
                    "abcdefghijk:251|2".to_owned(),
                    "abcdefghijk:251|3".to_owned()
                ],
                Some("abcdefghijk:251|1".to_owned())
            )
        );
        q.finish(&job);
        assert_eq!(q.start_next().unwrap().seg, seg(2));
    }

    #[test]
    fn quit_cancels_queued_and_in_flight() {
        let mut q = SendQueue::new(8);
        q.push(seg(1));
        q.push(seg(2));
        q.push(seg(3));
        let job = q.start_next().unwrap();
        assert!(q.quit(&seg(2)));
        assert!(!job.cancel.is_cancelled());
        assert!(q.quit(&seg(1)));
        assert!(job.cancel.is_cancelled());
        // Asked for again right after a quit: queued anew, not taken for a duplicate.
        assert_eq!(q.push(seg(1)), Push::Queued);
        assert!(q.quit(&seg(1)));
        assert!(!q.quit(&seg(9)));
        q.finish(&job);
        assert_eq!(q.describe(), (vec!["abcdefghijk:251|3".to_owned()], None));
        let job = q.start_next().unwrap();
        q.push(seg(4));
        assert_eq!(q.quit_all(), 2);
        assert!(job.cancel.is_cancelled());
        q.finish(&job);
        assert!(q.start_next().is_none());
    }

    #[tokio::test]
    async fn cancel_wakes_waiters() {
        let cancel = Arc::new(Cancel::default());
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(cancel.cancel());
        assert!(!cancel.cancel());
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
